"""ONNX Runtime's contrib and fused ops (domain ``com.microsoft``) as standard ONNX.

ONNX Runtime's optimizer saves graphs with ops of its own (``FusedConv``, ``Gelu``,
``FusedMatMul``, …) that TensorRT's parser does not know. Each one replaced here has an exact
standard-ONNX equivalent, taken from ONNX Runtime's operator documentation (ContribOperators.md);
an op, or a form of one, without such an equivalent is left as it is and reported by the caller.
The caller checks the result against the original on ONNX Runtime before using it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from trtimport.onnxtools.graph import opset_of, unique_namer

if TYPE_CHECKING:
    import onnx

MS_DOMAIN = "com.microsoft"


class _Emit:
    """Appends standard nodes that replace one contrib node, with fresh names."""

    def __init__(self, node: onnx.NodeProto, fresh: Callable[[str], str]) -> None:
        self.node = node
        self.fresh = fresh
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def op(self, op_type: str, *inputs: str, out: str | None = None, **attrs: Any) -> str:
        from onnx import helper

        base = self.node.name or self.node.op_type
        output = out or self.fresh(f"{base}/{op_type}")
        name = self.fresh(f"{base}/{op_type}")
        self.nodes.append(helper.make_node(op_type, list(inputs), [output], name=name, **attrs))
        return output

    def const(self, value: float) -> str:
        import numpy as np
        from onnx import numpy_helper

        name = self.fresh(f"{self.node.name or self.node.op_type}/const")
        self.initializers.append(numpy_helper.from_array(np.array(value, np.float32), name))
        return name


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _activation(e: _Emit, x: str, name: str, params: list[float], out: str) -> bool:
    """Apply FusedConv's ``activation`` to ``x``; False for one not known here."""
    if name == "Relu" or name == "Sigmoid" or name == "Tanh":
        e.op(name, x, out=out)
    elif name == "LeakyRelu":
        e.op("LeakyRelu", x, out=out, alpha=params[0] if params else 0.01)
    elif name == "HardSigmoid":
        alpha, beta = params if len(params) == 2 else (0.2, 0.5)
        e.op("HardSigmoid", x, out=out, alpha=alpha, beta=beta)
    elif name == "Clip" and len(params) == 2:
        e.op("Clip", x, e.const(params[0]), e.const(params[1]), out=out)
    else:
        return False
    return True


def _fused_conv(e: _Emit) -> bool:
    node, attrs = e.node, _attrs(e.node)
    activation = attrs.pop("activation", b"")
    params = [float(p) for p in attrs.pop("activation_params", [])]
    act = activation.decode() if isinstance(activation, bytes) else str(activation)
    conv = e.op("Conv", *node.input[:3], **attrs)
    if len(node.input) > 3 and node.input[3]:
        conv = e.op("Add", conv, node.input[3])
    if not act:
        e.op("Identity", conv, out=node.output[0])
        return True
    return _activation(e, conv, act, params, node.output[0])


def _erf_gelu(e: _Emit, x: str, out: str) -> None:
    """0.5 * x * (1 + erf(x / sqrt(2)))."""
    erf = e.op("Erf", e.op("Div", x, e.const(math.sqrt(2.0))))
    e.op("Mul", e.op("Mul", x, e.const(0.5)), e.op("Add", erf, e.const(1.0)), out=out)


def _gelu(e: _Emit) -> bool:
    _erf_gelu(e, e.node.input[0], e.node.output[0])
    return True


def _bias_gelu(e: _Emit) -> bool:
    _erf_gelu(e, e.op("Add", *e.node.input[:2]), e.node.output[0])
    return True


def _fast_gelu(e: _Emit) -> bool:
    """0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3))), x with the optional bias."""
    x = e.node.input[0]
    if len(e.node.input) > 1 and e.node.input[1]:
        x = e.op("Add", x, e.node.input[1])
    cube = e.op("Mul", e.op("Mul", x, x), x)
    inner = e.op("Add", x, e.op("Mul", cube, e.const(0.044715)))
    tanh = e.op("Tanh", e.op("Mul", inner, e.const(math.sqrt(2.0 / math.pi))))
    e.op("Mul", e.op("Mul", x, e.const(0.5)), e.op("Add", tanh, e.const(1.0)), out=e.node.output[0])
    return True


def _quick_gelu(e: _Emit) -> bool:
    """x * sigmoid(alpha * x)."""
    alpha = float(_attrs(e.node).get("alpha", 1.702))
    x = e.node.input[0]
    e.op("Mul", x, e.op("Sigmoid", e.op("Mul", x, e.const(alpha))), out=e.node.output[0])
    return True


def _fused_matmul(e: _Emit, ranks: dict[str, int]) -> bool:
    attrs = _attrs(e.node)
    if attrs.get("transBatchA") or attrs.get("transBatchB"):
        return False
    operands = []
    for name, flag in zip(e.node.input[:2], ("transA", "transB"), strict=True):
        if attrs.get(flag):
            rank = ranks.get(name)
            if rank is None or rank < 2:
                return False
            perm = [*range(rank - 2), rank - 1, rank - 2]
            name = e.op("Transpose", name, perm=perm)
        operands.append(name)
    alpha = float(attrs.get("alpha", 1.0))
    if alpha == 1.0:
        e.op("MatMul", *operands, out=e.node.output[0])
    else:
        e.op("Mul", e.op("MatMul", *operands), e.const(alpha), out=e.node.output[0])
    return True


def _skip_layer_norm(e: _Emit, opset: int) -> bool:
    node = e.node
    if opset < 17 or any(o for o in node.output[1:3]):
        return False
    inputs = list(node.input) + [""] * (5 - len(node.input))
    x, skip, gamma, beta, bias = inputs[:5]
    total = e.op("Add", x, skip)
    if bias:
        total = e.op("Add", total, bias)
    if len(node.output) > 3 and node.output[3]:
        total = e.op("Identity", total, out=node.output[3])
    epsilon = float(_attrs(node).get("epsilon", 1e-12))
    norm_inputs = [total, gamma] + ([beta] if beta else [])
    e.op("LayerNormalization", *norm_inputs, out=node.output[0], axis=-1, epsilon=epsilon)
    return True


def _ranks(model: onnx.ModelProto) -> dict[str, int]:
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # shape inference is a hint here: without it, transposes are skipped
        inferred = model
    graph = inferred.graph
    ranks = {}
    for vi in [*graph.input, *graph.value_info, *graph.output]:
        if vi.type.tensor_type.HasField("shape"):
            ranks[vi.name] = len(vi.type.tensor_type.shape.dim)
    for t in graph.initializer:
        ranks[t.name] = len(t.dims)
    return ranks


def _replace_pass(
    graph: onnx.GraphProto, opset: int, ranks: dict[str, int], replaced: dict[str, int]
) -> list[str]:
    """Replace what can be in one walk over ``graph``; returns the contrib nodes left."""
    fresh = unique_namer(graph)
    makers: dict[str, Callable[[_Emit], bool]] = {
        "FusedConv": _fused_conv,
        "Gelu": _gelu,
        "BiasGelu": _bias_gelu,
        "FastGelu": _fast_gelu,
        "QuickGelu": _quick_gelu,
        "FusedMatMul": lambda e: _fused_matmul(e, ranks),
        "SkipLayerNormalization": lambda e: _skip_layer_norm(e, opset),
    }
    left: list[str] = []
    nodes: list[onnx.NodeProto] = []
    for i, node in enumerate(graph.node):
        if node.domain != MS_DOMAIN:
            nodes.append(node)
            continue
        maker = makers.get(node.op_type)
        emit = _Emit(node, fresh)
        if maker is not None and maker(emit):
            nodes.extend(emit.nodes)
            graph.initializer.extend(emit.initializers)
            replaced[node.op_type] = replaced.get(node.op_type, 0) + 1
        else:
            why = "no exact standard form" if maker else "not known here"
            left.append(f"node {i} ({node.name or '?'}, {MS_DOMAIN}.{node.op_type}): {why}")
            nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    return left


def replace_contrib_ops(
    model: onnx.ModelProto,
) -> tuple[onnx.ModelProto, dict[str, int], list[str]]:
    """A copy of ``model`` with every replaceable ``com.microsoft`` op made standard.

    Returns (model, replaced count by op type, descriptions of the contrib nodes left).
    """
    import onnx

    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    if not any(n.domain == MS_DOMAIN for n in graph.node):
        return out, {}, []
    opset = opset_of(out)
    replaced: dict[str, int] = {}
    left: list[str] = []
    # FusedMatMul's transposes need ranks, which shape inference knows only once the contrib
    # ops before it are standard: passes until one replaces nothing.
    for _ in range(4):
        before = sum(replaced.values())
        left = _replace_pass(graph, opset, _ranks(out), replaced)
        if not left or sum(replaced.values()) == before:
            break
    if not any(n.domain == MS_DOMAIN for n in graph.node):
        kept = [o for o in out.opset_import if o.domain != MS_DOMAIN]
        del out.opset_import[:]
        out.opset_import.extend(kept)
    return out, replaced, left
