"""Element-wise math, activations, softmax, reductions and fully connected layers."""

from __future__ import annotations

import numpy as np

from trtimport.importers.uff.context import Converter, NotConvertible
from trtimport.importers.uff.model import UffNode
from trtimport.importers.uff.ops.registry import handles

_BINARY = {
    "add": "Add",
    "sub": "Sub",
    "mul": "Mul",
    "div": "Div",
    "min": "Min",
    "max": "Max",
    "pow": "Pow",
}
#: Unary functions that are one ONNX op of the same meaning.
_UNARY = {
    "neg": "Neg",
    "abs": "Abs",
    "exp": "Exp",
    "log": "Log",
    "sqrt": "Sqrt",
    "floor": "Floor",
    "ceil": "Ceil",
    "sin": "Sin",
    "cos": "Cos",
    "tan": "Tan",
    "asin": "Asin",
    "acos": "Acos",
    "atan": "Atan",
    "sinh": "Sinh",
    "cosh": "Cosh",
    "asinh": "Asinh",
    "acosh": "Acosh",
    "atanh": "Atanh",
    "reciprocal": "Reciprocal",
    "sign": "Sign",
    "round": "Round",
    "erf": "Erf",
}
_ACTIVATIONS = {
    "relu": "Relu",
    "sigmoid": "Sigmoid",
    "tanh": "Tanh",
    "elu": "Elu",
    "selu": "Selu",
    "softsign": "Softsign",
    "softplus": "Softplus",
}
_REDUCE = {
    "sum": "ReduceSum",
    "mean": "ReduceMean",
    "max": "ReduceMax",
    "min": "ReduceMin",
    "prod": "ReduceProd",
}
#: TensorFlow's default LeakyRelu slope.
DEFAULT_LEAKY_ALPHA = 0.2


def _func(node: UffNode) -> str:
    func = node.fields.get("func")
    if not isinstance(func, str):
        raise NotConvertible("has no 'func' field")
    return func.lower()


@handles("Binary")
def convert_binary(cx: Converter, node: UffNode) -> None:
    func = _func(node)
    if func not in _BINARY:
        raise NotConvertible(f"func '{func}' is not supported (supported: {', '.join(_BINARY)})")
    if len(node.inputs) < 2:
        raise NotConvertible(f"has {len(node.inputs)} input(s), not 2")
    cx.emit(_BINARY[func], cx.inputs(node)[:2], node.name)


def emit_binary(cx: Converter, node: UffNode, onnx_op: str) -> None:
    """A two-input element-wise op with numpy broadcasting."""
    cx.emit(onnx_op, cx.inputs(node)[:2], node.name)


@handles("Unary")
def convert_unary(cx: Converter, node: UffNode) -> None:
    func = _func(node)
    x = cx.tensor(node.inputs[0])
    if func in _UNARY:
        cx.emit(_UNARY[func], [x], node.name)
    elif func == "rsqrt":
        cx.emit("Reciprocal", [cx.step("Sqrt", [x], f"{node.name}/sqrt")], node.name)
    elif func == "square":
        cx.emit("Mul", [x, x], node.name)
    elif func == "pow":
        raise NotConvertible("the uff converter dropped the exponent of Pow; the value is lost")
    else:
        raise NotConvertible(f"func '{func}' is not supported")


def leaky_alpha(node: UffNode) -> float:
    """A LeakyRelu's negative slope, under any of the field names writers used."""
    for key in ("alpha", "negative_slope", "slope"):
        value = node.fields.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return DEFAULT_LEAKY_ALPHA


def relu6(cx: Converter, x: str, out: str) -> str:
    """min(max(x, 0), 6)."""
    return cx.emit(
        "Clip",
        [x, cx.const(np.float32(0), f"{out}/min"), cx.const(np.float32(6), f"{out}/max")],
        out,
    )


@handles("Activation")
def convert_activation(cx: Converter, node: UffNode) -> None:
    func = _func(node)
    x = cx.tensor(node.inputs[0])
    if func in _ACTIVATIONS:
        cx.emit(_ACTIVATIONS[func], [x], node.name)
    elif func == "relu6":
        relu6(cx, x, node.name)
    elif func in ("leakyrelu", "leaky_relu", "lrelu"):
        cx.emit("LeakyRelu", [x], node.name, alpha=leaky_alpha(node))
    else:
        raise NotConvertible(f"func '{func}' is not supported")


@handles("LeakyRelu", "_LeakyRelu")
def convert_leaky_relu(cx: Converter, node: UffNode) -> None:
    cx.emit("LeakyRelu", [cx.tensor(node.inputs[0])], node.name, alpha=leaky_alpha(node))


@handles("Softmax")
def convert_softmax(cx: Converter, node: UffNode) -> None:
    """TensorFlow's Softmax normalises the last axis. The converter writes a fixed default order
    for it (``N+C`` or ``NC+`` by version) and axis 0, the channel in that order: for the
    orders it writes, that is the last axis for every rank it could see in a graph whose
    channels are last. An explicit non-zero axis counts canonical axes after N."""
    x = cx.tensor(node.inputs[0])
    axis = node.fields.get("axis", 0)
    if not isinstance(axis, int) or axis == 0:
        cx.emit("Softmax", [x], node.name, axis=-1)
        return
    rank = cx.rank(x)
    perm = cx.permutation(node.fields.get("inputs_orders"), 0, rank, node)
    cx.emit("Softmax", [x], node.name, axis=perm.index(axis + 1))


@handles("Reduce")
def convert_reduce(cx: Converter, node: UffNode) -> None:
    func = _func(node)
    if func not in _REDUCE:
        raise NotConvertible(f"func '{func}' is not supported (supported: {', '.join(_REDUCE)})")
    axes = node.fields.get("axes")
    if isinstance(axes, int):
        axes = [axes]
    keepdims = node.fields.get("keepdims")
    if not isinstance(keepdims, bool):
        keepdims = _feeds_element_wise(cx, node)
    reduce_op(cx, _REDUCE[func], cx.tensor(node.inputs[0]), axes, int(keepdims), node.name)


def _feeds_element_wise(cx: Converter, node: UffNode) -> bool:
    """Files of the TensorRT 3 era have no keepdims field. TensorFlow's default is to drop the
    axes, but a result combined element-wise with another tensor (a squeeze-excite scale, a
    normalisation) only broadcast in TensorFlow with the axes kept."""
    return any(
        other.op == "Binary" and node.name in other.inputs for other in cx.model.nodes.values()
    )


def reduce_op(
    cx: Converter, op: str, x: str, axes: list[int] | None, keepdims: int, out: str
) -> str:
    """An ONNX reduction over ``axes`` (all axes for None or empty)."""
    if not axes:
        return cx.emit(op, [x], out, keepdims=keepdims)
    if (op == "ReduceSum" and cx.opset >= 13) or cx.opset >= 18:
        return cx.emit(op, [x, cx.ints(axes, f"{out}/axes")], out, keepdims=keepdims)
    return cx.emit(op, [x], out, axes=[int(a) for a in axes], keepdims=keepdims)


def _is_swapped(perm: list[int]) -> bool:
    if sorted(perm) != [0, 1]:
        raise NotConvertible(f"has a 2-D order {perm} that is not a permutation")
    return perm == [1, 0]


@handles("FullyConnected")
def convert_fully_connected(cx: Converter, node: UffNode) -> None:
    """TensorFlow's MatMul: ``inputs_orders`` says whether the data is NC or CN and the weights
    CK or KC (``transpose_a``/``transpose_b``)."""
    if len(node.inputs) < 2:
        raise NotConvertible("has no weights input")
    orders = node.fields.get("inputs_orders")
    x_swapped = _is_swapped(cx.permutation(orders, 0, 2, node)) if orders else False
    w_is_ck = _is_swapped(cx.permutation(orders, 1, 2, node)) if orders else False
    x = cx.tensor(node.inputs[0])
    if x_swapped:
        x = cx.transpose(x, [1, 0], f"{node.name}/nc")
    weights = cx.value(node.inputs[1])
    if weights is not None:
        if weights.ndim != 2:
            raise NotConvertible(f"has weights of rank {weights.ndim}, not 2")
        ck = weights if w_is_ck else weights.T
        w = cx.const(ck, f"{node.name}/weights")  # a view of the file (strided if KC)
    else:
        w = cx.tensor(node.inputs[1])
        if not w_is_ck:
            w = cx.transpose(w, [1, 0], f"{node.name}/ck")
    bias = node.inputs[2] if len(node.inputs) > 2 else None
    if bias is None:
        cx.emit("MatMul", [x, w], node.name)
    else:
        product = cx.step("MatMul", [x, w], f"{node.name}/matmul")
        cx.emit("Add", [product, cx.tensor(bias)], node.name)


@handles("ArgMax", "ArgMin")
def convert_arg(cx: Converter, node: UffNode) -> None:
    if "axis" in node.fields and isinstance(node.fields["axis"], int):
        axis = node.fields["axis"]
    else:
        axis = int(cx.const_input(node, 1, "axis").reshape(-1)[0])
    cx.emit(node.op, [cx.tensor(node.inputs[0])], node.name, axis=axis, keepdims=0)
