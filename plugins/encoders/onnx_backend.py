"""ONNX helpers for the built-in encoders: TFLite conversion, dynamic batch, sessions.

``onnx``, ``tflite2onnx`` and ``onnxruntime`` are imported inside the functions, so importing
this module is cheap.
"""

from __future__ import annotations

import logging
import os
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from invbench.assets import derived_file_ok, stamp_derived, verified_digest
from invbench.errors import AssetError

logger = logging.getLogger(__name__)


def _make_batch_dynamic(model: Any) -> None:
    """Turn the fixed batch size of a converted graph into a symbolic ``batch`` dim.

    The input's and outputs' first dims become ``batch``; every ``Reshape`` of an
    activation whose constant target shape starts with the fixed batch size gets ``-1``
    there; the converter's ``value_info`` (fixed intermediate shapes) is dropped.
    """
    from onnx import numpy_helper

    graph = model.graph
    batch = graph.input[0].type.tensor_type.shape.dim[0].dim_value
    for value in [*graph.input, *graph.output]:
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    initializers = {init.name: init for init in graph.initializer}
    for node in graph.node:
        if node.op_type != "Reshape" or node.input[0] in initializers:
            continue
        init = initializers.get(node.input[1])
        if init is None:
            continue
        shape = numpy_helper.to_array(init).copy()
        if shape.size and shape[0] == batch:
            shape[0] = -1
            init.CopyFrom(numpy_helper.from_array(shape.astype(np.int64), init.name))
    del graph.value_info[:]


def converter_version() -> str:
    """Installed ``tflite2onnx`` version (part of the converted file's name)."""
    try:
        return metadata.version("tflite2onnx")
    except metadata.PackageNotFoundError:
        return "missing"


def tflite_to_onnx(tflite_path: Path, onnx_path: Path) -> Path:
    """Convert a TFLite model with ``tflite2onnx`` and make its batch dynamic.

    The result is written atomically (a temporary folder beside it, then ``os.replace``),
    so concurrent runs never see half a file, and its digest is stamped: an existing
    ``onnx_path`` is reused only while it still has that digest, else converted again.

    Args:
        tflite_path: The verified ``.tflite`` asset.
        onnx_path: Where the converted model is cached.

    Returns:
        ``onnx_path``.

    Raises:
        AssetError: When ``tflite2onnx`` is not installed.
    """
    if onnx_path.is_file():
        if derived_file_ok(onnx_path):
            return onnx_path
        logger.warning("converted model %s changed since it was made; converting again", onnx_path)
    try:
        import onnx
        import tflite2onnx
    except ImportError as exc:
        raise AssetError(
            f"cannot convert {tflite_path.name} to ONNX: {exc}",
            "install `tflite2onnx` (it brings `onnx` and `tflite`), or use the option "
            "backend=torch",
        ) from exc
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    logger.info("converting %s to ONNX with tflite2onnx %s", tflite_path, converter_version())
    with tempfile.TemporaryDirectory(prefix=".convert-", dir=onnx_path.parent) as tmpdir:
        tmp = Path(tmpdir) / onnx_path.name
        tflite2onnx.convert(str(tflite_path), str(tmp))
        model = onnx.load(str(tmp))
        _make_batch_dynamic(model)
        onnx.checker.check_model(model)
        onnx.save(model, str(tmp))
        os.replace(tmp, onnx_path)  # atomic: same file system, never half a file
    stamp_derived(onnx_path)
    logger.info("cached ONNX model at %s", onnx_path)
    return onnx_path


def fuse_prelu(model: Any) -> int:
    """Rewrite each converted PReLU ``relu(x) + m * (x - |x|)`` in a blocked-layout form.

    ``tflite2onnx`` writes a TFLite PReLU whose slope ``m = alpha / 2`` is a constant
    ``(C,)`` reshaped to ``(1, C, 1, 1)`` as six nodes (``Relu``, ``Abs``, ``Sub``,
    ``Reshape``, ``Mul``, ``Add``). onnxruntime runs ``Abs``, ``Sub`` and a broadcast ``Mul``
    (and a ``PRelu`` node, the obvious fusion) only in the plain NCHW layout, so around
    every PReLU it reorders the convolution's output out of its blocked NCHWc layout and
    back: a third of the model's time. This rewrites each pattern, in place, as

        r = Relu(x);  y = r + BatchNorm_{2m}(x + BatchNorm_{-1}(r))

    with unit variance, zero mean and bias and ``epsilon = 0`` (so each ``BatchNorm`` is
    one product per element), which onnxruntime keeps in the blocked layout (its NCHWc
    transformer turns the ``BatchNorm``s into depthwise 1x1 convolutions and the ``Add``s
    into their accumulation). Bit-identical to the pattern: ``x + (-r)`` is ``0`` for
    ``x >= 0`` and ``x`` for ``x < 0``, exactly; so ``y`` is ``r + 0 = x`` for ``x >= 0``
    and ``0 + (2m) x`` for ``x < 0``, the exact product rounded once, as the pattern's
    ``m * (2x)`` (doubling is exact); a fused multiply-add gives the same, one addend being
    zero. Checked on synthetic and real faces in ``tests/test_perf_exactness.py``.

    Args:
        model: An ``onnx.ModelProto``; modified in place.

    Returns:
        The number of PReLUs rewritten.
    """
    from onnx import helper, numpy_helper

    graph = model.graph
    inits = {init.name: init for init in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    readers: dict[str, int] = {out.name: 1 for out in graph.output}
    for node in graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    replaced: dict[int, list[Any]] = {}
    dropped: set[int] = set()
    constants: set[str] = set()

    def constant(name: str, value: np.ndarray) -> str:
        if name not in constants:
            graph.initializer.append(numpy_helper.from_array(value.astype(np.float32), name))
            constants.add(name)
        return name

    def scale_by(inp: str, scale: str, out: str, channels: int) -> Any:
        """``BatchNormalization`` that is ``inp * scale`` per channel, nothing else."""
        zeros = constant(f"prelu/zeros{channels}", np.zeros(channels))
        ones = constant(f"prelu/ones{channels}", np.ones(channels))
        return helper.make_node(
            "BatchNormalization", [inp, scale, zeros, zeros, ones], [out], epsilon=0.0
        )

    for add in graph.node:
        if add.op_type != "Add" or len(add.input) != 2:
            continue
        first, second = (producer.get(name) for name in add.input)
        if first is not None and first.op_type == "Mul":
            first, second = second, first
        if first is None or second is None or first.op_type != "Relu":
            continue
        if second.op_type != "Mul" or len(second.input) != 2:
            continue
        x = first.input[0]
        operands = [producer.get(name) for name in second.input]
        if operands[0] is not None and operands[0].op_type == "Sub":
            operands.reverse()
        reshape, sub = operands
        if reshape is None or sub is None:
            continue
        if reshape.op_type != "Reshape" or sub.op_type != "Sub" or sub.input[0] != x:
            continue
        absolute = producer.get(sub.input[1])
        if absolute is None or absolute.op_type != "Abs" or absolute.input[0] != x:
            continue
        if reshape.input[0] not in inits or reshape.input[1] not in inits:
            continue
        inner = (first, second, reshape, sub, absolute)
        if any(readers.get(node.output[0], 0) != 1 for node in inner):
            continue  # an intermediate read elsewhere keeps the pattern as it is
        half = numpy_helper.to_array(inits[reshape.input[0]])
        shape = numpy_helper.to_array(inits[reshape.input[1]])
        if half.dtype != np.float32 or shape.size != 4 or shape[0] != 1:
            continue
        if half.size != int(np.prod(shape)) or shape[2] != 1 or shape[3] != 1:
            continue
        c = int(shape[1])
        y = add.output[0]
        slope = constant(f"{y}/prelu_slope", half.reshape(c) * np.float32(2))
        minus = constant(f"prelu/minus_ones{c}", -np.ones(c))
        relu, neg, low, scaled = (f"{y}/prelu_{part}" for part in ("relu", "neg", "low", "scaled"))
        replaced[id(add)] = [
            helper.make_node("Relu", [x], [relu]),
            scale_by(relu, minus, neg, c),
            helper.make_node("Add", [x, neg], [low]),  # min(x, 0), exactly
            scale_by(low, slope, scaled, c),
            helper.make_node("Add", [relu, scaled], [y]),
        ]
        dropped.update(id(node) for node in inner)
    if not replaced:
        return 0
    nodes = [
        new
        for node in graph.node
        if id(node) not in dropped
        for new in replaced.get(id(node), [node])
    ]
    del graph.node[:]
    graph.node.extend(nodes)
    return len(replaced)


def prelu_fused_model(onnx_path: Path) -> Path:
    """``onnx_path`` with :func:`fuse_prelu` applied, cached beside it (made on first use).

    Named ``<stem>.prelu2-<sha256 prefix of onnx_path>.onnx`` (``prelu2``: the second
    form of the rewrite; the first, one ``PRelu`` node each, was slower), written atomically and
    stamped like the converted model, so it follows its source file and a changed or
    half-written copy is never used. Cached rather than fused at every load: importing
    ``onnx`` costs more CPU time than fusing saves on a few hundred faces. The source file
    and the stage cache keys are untouched.

    Args:
        onnx_path: A converted model (:func:`tflite_to_onnx`).

    Returns:
        The fused model's path.
    """
    digest = verified_digest(onnx_path)[:12]
    fused = onnx_path.with_name(f"{onnx_path.stem}.prelu2-{digest}.onnx")
    if fused.is_file() and derived_file_ok(fused):
        return fused
    import onnx

    model = onnx.load(str(onnx_path))
    count = fuse_prelu(model)
    onnx.checker.check_model(model)
    with tempfile.TemporaryDirectory(prefix=".fuse-", dir=fused.parent) as tmpdir:
        tmp = Path(tmpdir) / fused.name
        onnx.save(model, str(tmp))
        os.replace(tmp, fused)  # atomic: same file system, never half a file
    stamp_derived(fused)
    logger.info("fused %d PReLU patterns of %s into %s", count, onnx_path.name, fused.name)
    return fused


def session_threads() -> int:
    """Intra-op threads of the onnxruntime sessions: torch's ``get_num_threads()``."""
    return max(1, torch.get_num_threads())


def session_options() -> Any:
    """``onnxruntime.SessionOptions`` of every built-in encoder's session.

    Settings that make results a function of the inputs only (see
    :mod:`invbench.determinism`): :func:`session_threads` intra-op threads (torch's count,
    so one setting governs both and the record states it; onnxruntime's own default is the
    number of physical cores), one inter-op thread, sequential execution and
    ``use_deterministic_compute``; errors only in the log. Measured on CPU: the same bits
    for intra-op threads 1, 2, 4 and 8 and for every batch size.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = session_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.use_deterministic_compute = True
    return options


def make_session(onnx_path: Path, device: torch.device, *, prelu: bool = False) -> Any:
    """An ``onnxruntime.InferenceSession`` for ``onnx_path`` with :func:`session_options`.

    Uses the CUDA execution provider when ``device`` is CUDA and onnxruntime offers it
    (``onnxruntime-gpu``), else the CPU provider.

    Args:
        onnx_path: The model file (left unchanged on disk).
        device: Where to run.
        prelu: On the CPU provider, run :func:`prelu_fused_model` of the file instead
            (bit-identical outputs, faster; see ``docs/performance.md``). Not on CUDA:
            onnxruntime's CUDA ``BatchNormalization`` raises ``epsilon`` to cuDNN's minimum
            (1e-5), which would scale the negative side of every rewritten PReLU.
    """
    import onnxruntime as ort

    providers: list[Any] = ["CPUExecutionProvider"]
    if device.type == "cuda":
        if "CUDAExecutionProvider" in ort.get_available_providers():
            index = device.index if device.index is not None else 0
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": index}))
        else:
            logger.warning(
                "onnxruntime has no CUDA provider here; running %s on the CPU", onnx_path
            )
    if prelu and providers == ["CPUExecutionProvider"]:
        onnx_path = prelu_fused_model(onnx_path)
    return ort.InferenceSession(str(onnx_path), session_options(), providers=providers)


def run_session(session: Any, inputs: np.ndarray, output: int = 0) -> np.ndarray:
    """Run a single-input session on ``inputs`` (float32); return output ``output``."""
    name = session.get_inputs()[0].name
    return session.run(None, {name: np.ascontiguousarray(inputs, dtype=np.float32)})[output]
