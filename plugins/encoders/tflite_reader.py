"""A small pure-Python reader for TFLite flatbuffers: tensors, constant data and operators.

It reads just what is needed to load the weights of a float32 TFLite model into a torch
module: the first subgraph's tensors (name, shape, type, constant data), its operators in
execution order (builtin op name, input and output tensor indices) and the options of
``CONV_2D`` and ``DEPTHWISE_CONV_2D``. No TensorFlow or ``tflite`` package is needed.

The field numbers follow the public TFLite schema (``schema.fbs``): a flatbuffer table
starts with a signed offset to its vtable, whose ``uint16`` entries give each field's
offset inside the table (0 = absent, the schema default applies).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: Builtin operator codes used by the models we load (schema ``BuiltinOperator``).
BUILTIN_OPS: dict[int, str] = {
    0: "ADD",
    3: "CONV_2D",
    4: "DEPTHWISE_CONV_2D",
    17: "AVERAGE_POOL_2D",
    18: "MUL",
    19: "RELU",
    22: "RESHAPE",
    41: "SUB",
    54: "PRELU",
    101: "ABS",
}

#: Tensor element types (schema ``TensorType``) -> numpy dtype.
TENSOR_TYPES: dict[int, np.dtype] = {
    0: np.dtype("<f4"),
    1: np.dtype("<f2"),
    2: np.dtype("<i4"),
    3: np.dtype("u1"),
    4: np.dtype("<i8"),
    9: np.dtype("i1"),
}

_CONV_OPTIONS = 1  # BuiltinOptions.Conv2DOptions
_DEPTHWISE_OPTIONS = 2  # BuiltinOptions.DepthwiseConv2DOptions


class _Table:
    """A flatbuffer table at byte position ``pos`` of ``buf``."""

    def __init__(self, buf: bytes, pos: int) -> None:
        self.buf = buf
        self.pos = pos
        self.vtable = pos - struct.unpack_from("<i", buf, pos)[0]
        self.vtable_size = struct.unpack_from("<H", buf, self.vtable)[0]

    def _field(self, index: int) -> int:
        entry = 4 + 2 * index
        if entry >= self.vtable_size:
            return 0
        return struct.unpack_from("<H", self.buf, self.vtable + entry)[0]

    def scalar(self, index: int, fmt: str, default: int = 0) -> int:
        off = self._field(index)
        return struct.unpack_from("<" + fmt, self.buf, self.pos + off)[0] if off else default

    def _deref(self, index: int) -> int | None:
        off = self._field(index)
        if not off:
            return None
        at = self.pos + off
        return at + struct.unpack_from("<I", self.buf, at)[0]

    def table(self, index: int) -> _Table | None:
        at = self._deref(index)
        return _Table(self.buf, at) if at is not None else None

    def string(self, index: int) -> str:
        at = self._deref(index)
        if at is None:
            return ""
        n = struct.unpack_from("<I", self.buf, at)[0]
        return self.buf[at + 4 : at + 4 + n].decode("utf-8")

    def vector(self, index: int, fmt: str) -> list[int]:
        at = self._deref(index)
        if at is None:
            return []
        n = struct.unpack_from("<I", self.buf, at)[0]
        return list(struct.unpack_from(f"<{n}{fmt}", self.buf, at + 4))

    def bytes_vector(self, index: int) -> memoryview:
        at = self._deref(index)
        if at is None:
            return memoryview(b"")
        n = struct.unpack_from("<I", self.buf, at)[0]
        return memoryview(self.buf)[at + 4 : at + 4 + n]

    def tables(self, index: int) -> list[_Table]:
        at = self._deref(index)
        if at is None:
            return []
        n = struct.unpack_from("<I", self.buf, at)[0]
        out = []
        for i in range(n):
            elem = at + 4 + 4 * i
            out.append(_Table(self.buf, elem + struct.unpack_from("<I", self.buf, elem)[0]))
        return out


@dataclass
class TFLiteTensor:
    """One tensor of the graph.

    Attributes:
        name: Tensor name from the converter (TensorFlow op names).
        shape: Static shape (TFLite uses NHWC activations, OHWI conv filters and
            ``(1, H, W, C)`` depthwise filters).
        data: The constant value (a read-only numpy array), or ``None`` for activations.
    """

    name: str
    shape: tuple[int, ...]
    data: np.ndarray | None


@dataclass
class TFLiteOperator:
    """One operator, in execution order.

    Attributes:
        op: Builtin op name (``"CONV_2D"``; ``"OP_<code>"`` for codes not in ``BUILTIN_OPS``).
        inputs: Input tensor indices (``-1`` = optional input left out).
        outputs: Output tensor indices.
        options: For convolutions: ``padding`` (``"SAME"``/``"VALID"``), ``stride``
            ``(h, w)``, ``dilation`` ``(h, w)``, ``activation`` (0 = none) and, for
            depthwise convolutions, ``depth_multiplier``. Empty for other ops.
    """

    op: str
    inputs: list[int]
    outputs: list[int]
    options: dict[str, object] = field(default_factory=dict)


@dataclass
class TFLiteGraph:
    """The first subgraph of a TFLite model."""

    tensors: list[TFLiteTensor]
    operators: list[TFLiteOperator]
    inputs: list[int]
    outputs: list[int]

    def const(self, index: int) -> np.ndarray:
        """Constant data of tensor ``index``; raises ``ValueError`` for activations."""
        data = self.tensors[index].data
        if data is None:
            raise ValueError(f"tensor {self.tensors[index].name!r} is not a constant")
        return data


def _conv_options(table: _Table, depthwise: bool) -> dict[str, object]:
    # Conv2DOptions: padding, stride_w, stride_h, activation, dilation_w, dilation_h.
    # DepthwiseConv2DOptions: padding, stride_w, stride_h, depth_multiplier, activation,
    # dilation_w, dilation_h.
    shift = 1 if depthwise else 0
    opts: dict[str, object] = {
        "padding": "VALID" if table.scalar(0, "b") == 1 else "SAME",
        "stride": (table.scalar(2, "i"), table.scalar(1, "i")),
        "activation": table.scalar(3 + shift, "b"),
        "dilation": (table.scalar(5 + shift, "i", 1), table.scalar(4 + shift, "i", 1)),
    }
    if depthwise:
        opts["depth_multiplier"] = table.scalar(3, "i")
    return opts


def read_tflite(path: str | Path) -> TFLiteGraph:
    """Parse a ``.tflite`` file.

    Args:
        path: The model file.

    Returns:
        The first subgraph, with constant tensors as numpy arrays.

    Raises:
        ValueError: When the file is not a TFLite flatbuffer or uses an unsupported type.
    """
    buf = Path(path).read_bytes()
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise ValueError(f"{path} is not a TFLite model (no TFL3 identifier)")
    model = _Table(buf, struct.unpack_from("<I", buf, 0)[0])
    # Model: version 0, operator_codes 1, subgraphs 2, description 3, buffers 4.
    codes = []
    for opcode in model.tables(1):
        # OperatorCode: deprecated_builtin_code 0 (int8), custom_code 1, version 2,
        # builtin_code 3 (int32, newer files).
        codes.append(max(opcode.scalar(0, "b"), opcode.scalar(3, "i")))
    buffers = [b.bytes_vector(0) for b in model.tables(4)]
    subgraph = model.tables(2)[0]
    # SubGraph: tensors 0, inputs 1, outputs 2, operators 3, name 4.
    tensors = []
    for t in subgraph.tables(0):
        # Tensor: shape 0, type 1, buffer 2, name 3.
        shape = tuple(t.vector(0, "i"))
        ttype = t.scalar(1, "b")
        raw = buffers[t.scalar(2, "I")] if buffers else memoryview(b"")
        data = None
        if len(raw):
            if ttype not in TENSOR_TYPES:
                raise ValueError(f"tensor {t.string(3)!r} has unsupported type {ttype}")
            data = np.frombuffer(raw, dtype=TENSOR_TYPES[ttype]).reshape(shape)
        tensors.append(TFLiteTensor(t.string(3), shape, data))
    operators = []
    for o in subgraph.tables(3):
        # Operator: opcode_index 0, inputs 1, outputs 2, builtin_options_type 3,
        # builtin_options 4.
        code = codes[o.scalar(0, "I")]
        name = BUILTIN_OPS.get(code, f"OP_{code}")
        options: dict[str, object] = {}
        opt_table = o.table(4)
        opt_type = o.scalar(3, "B")
        if opt_table is not None and opt_type in (_CONV_OPTIONS, _DEPTHWISE_OPTIONS):
            options = _conv_options(opt_table, depthwise=opt_type == _DEPTHWISE_OPTIONS)
        operators.append(TFLiteOperator(name, o.vector(1, "i"), o.vector(2, "i"), options))
    return TFLiteGraph(tensors, operators, subgraph.vector(1, "i"), subgraph.vector(2, "i"))
