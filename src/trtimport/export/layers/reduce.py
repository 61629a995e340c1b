"""Reductions, softmax, top-k, matrix products, einsum and cumulative sums."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from trtimport.export.layers.common import (
    Converters,
    axes_of,
    in_int64,
    inp,
    out,
    rank_of,
    unsupported,
)

if TYPE_CHECKING:
    from trtimport.export.graph import GraphWriter

CONVERTERS = Converters()
converts = CONVERTERS.converts

_REDUCE = {
    "SUM": "ReduceSum",
    "PROD": "ReduceProd",
    "MAX": "ReduceMax",
    "MIN": "ReduceMin",
    "AVG": "ReduceMean",
}


def reduce_node(
    g: GraphWriter,
    op: str,
    x: str,
    axes: Sequence[int],
    keepdims: bool,
    outputs: list[str] | int,
    name: str,
) -> str:
    """An ONNX reduction with ``axes`` as input or attribute, whichever the opset wants."""
    as_input = op == "ReduceSum" or g.opset >= 18
    if as_input:
        ins = [x, g.ints(list(axes), f"{name}/axes")]
        return g.node(op, ins, outputs, name=name, keepdims=int(keepdims))[0]
    return g.node(op, [x], outputs, name=name, axes=list(axes), keepdims=int(keepdims))[0]


@converts("REDUCE")
def reduce(g: GraphWriter, layer: Any) -> None:
    """IReduceLayer -> ReduceSum/Prod/Max/Min/Mean."""
    op = _REDUCE.get(layer.op.name)
    if op is None:
        raise unsupported(f"reduce op {layer.op.name}")
    axes = axes_of(int(layer.axes), rank_of(layer))
    reduce_node(g, op, str(inp(layer, 0)), axes, layer.keep_dims, [out(layer)], layer.name)


@converts("SOFTMAX")
def softmax(g: GraphWriter, layer: Any) -> None:
    """ISoftMaxLayer -> Softmax over its single axis."""
    axes = axes_of(int(layer.axes), rank_of(layer))
    if len(axes) != 1:
        raise unsupported(f"softmax over axes {axes}")
    g.node("Softmax", [inp(layer, 0)], [out(layer)], name=layer.name, axis=axes[0])


@converts("TOPK")
def topk(g: GraphWriter, layer: Any) -> None:
    """ITopKLayer -> TopK (indices cast to TensorRT's int32)."""
    rank = rank_of(layer)
    axes = axes_of(int(layer.axes), rank)
    if inp(layer, 1) is not None:
        k = in_int64(g, layer, 1)
        (k,) = g.node("Reshape", [k, g.ints([1], f"{layer.name}/k1")], 1, name=f"{layer.name}/k")
    else:
        k = g.ints([int(layer.k)], f"{layer.name}/k")
    idx = g.fresh(f"{layer.name}/indices64")
    g.node(
        "TopK",
        [inp(layer, 0), k],
        [out(layer, 0), idx],
        name=layer.name,
        axis=axes[0],
        largest=int(layer.op.name == "MAX"),
        sorted=1,
    )
    g.node(
        "Cast",
        [idx],
        [out(layer, 1)],
        name=f"{layer.name}/indices",
        to=g.onnx_dtype(layer.get_output(1).dtype),
    )


def _matrix_operand(g: GraphWriter, layer: Any, i: int, op: str, vector_axis: int) -> str:
    x = str(inp(layer, i))
    rank = rank_of(layer, i)
    if op == "TRANSPOSE":
        perm = [*range(rank - 2), rank - 1, rank - 2]
        return g.node("Transpose", [x], 1, name=f"{layer.name}/t{i}", perm=perm)[0]
    if op == "VECTOR":
        axes = g.ints([vector_axis], f"{layer.name}/v{i}")
        return g.node("Unsqueeze", [x, axes], 1, name=f"{layer.name}/vec{i}")[0]
    return x


@converts("MATRIX_MULTIPLY")
def matrix_multiply(g: GraphWriter, layer: Any) -> None:
    """IMatrixMultiplyLayer -> MatMul (transposes and vector operands made explicit)."""
    op0, op1 = layer.op0.name, layer.op1.name
    a = _matrix_operand(g, layer, 0, op0, -2)
    b = _matrix_operand(g, layer, 1, op1, -1)
    squeeze_axes = [ax for ax, op in ((-2, op0), (-1, op1)) if op == "VECTOR"]
    if not squeeze_axes:
        g.node("MatMul", [a, b], [out(layer)], name=layer.name)
        return
    (m,) = g.node("MatMul", [a, b], 1, name=f"{layer.name}/matmul")
    axes = g.ints(squeeze_axes, f"{layer.name}/squeeze_axes")
    g.node("Squeeze", [m, axes], [out(layer)], name=layer.name)


@converts("EINSUM")
def einsum(g: GraphWriter, layer: Any) -> None:
    """IEinsumLayer -> Einsum."""
    ins = [inp(layer, i) for i in range(layer.num_inputs)]
    g.node("Einsum", ins, [out(layer)], name=layer.name, equation=str(layer.equation))


@converts("CUMULATIVE")
def cumulative(g: GraphWriter, layer: Any) -> None:
    """ICumulativeLayer (sum) -> CumSum."""
    if layer.op.name != "SUM":
        raise unsupported(f"cumulative op {layer.op.name}")
    g.node(
        "CumSum",
        [inp(layer, 0), inp(layer, 1)],
        [out(layer)],
        name=layer.name,
        exclusive=int(layer.exclusive),
        reverse=int(layer.reverse),
    )
