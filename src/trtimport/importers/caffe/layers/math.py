"""Eltwise, Axpy, Softmax, ArgMax and Reduction."""

from __future__ import annotations

import numpy as np

from trtimport.importers.caffe import shapes
from trtimport.importers.caffe.layers.common import axis_index, reduce
from trtimport.importers.caffe.registry import Converter, LayerContext, Shape

PROD, SUM, MAX = 0, 1, 2


def eltwise(ctx: LayerContext) -> list[Shape]:
    """Eltwise PROD, SUM (with per-bottom coefficients) or MAX over equal-shaped bottoms."""
    p = ctx.layer.eltwise_param
    first = ctx.input_shapes[0]
    for name, shape in zip(ctx.layer.bottom, ctx.input_shapes, strict=False):
        if tuple(shape) != tuple(first):
            raise ctx.shape_error(
                f"bottom '{name}' has shape {list(shape)}, expected {list(first)}: Caffe's "
                "Eltwise needs equal shapes (it does not broadcast); for a per-channel "
                "product with N x C x 1 x 1 weights, Reshape them to N x C and use a "
                "two-bottom Scale with axis: 0 (as SENet does)"
            )
    coeffs = list(p.coeff)
    if coeffs and p.operation != SUM:
        raise ctx.shape_error("coeff is only allowed with operation SUM")
    if coeffs and len(coeffs) != len(ctx.inputs):
        raise ctx.shape_error(f"{len(coeffs)} coeff values for {len(ctx.inputs)} bottoms")
    terms = list(ctx.inputs)
    if coeffs and any(c != 1.0 for c in coeffs):
        terms = [
            t if c == 1.0 else ctx.op("Mul", t, ctx.const(np.float32(c), "coeff"))
            for t, c in zip(terms, coeffs, strict=False)
        ]
    op = {PROD: "Mul", SUM: "Sum", MAX: "Max"}[p.operation]
    if op == "Mul":
        acc = terms[0]
        for i, t in enumerate(terms[1:], start=2):
            acc = ctx.op("Mul", acc, t, out=ctx.outputs[0] if i == len(terms) else None)
        if len(terms) == 1:
            ctx.op("Identity", acc, out=ctx.outputs[0])
    else:
        ctx.node(op, terms, ctx.outputs[:1])
    return [first]


def axpy(ctx: LayerContext) -> list[Shape]:
    """Axpy (SENet fork): a * x + y; a = bottom[0] (N x C x 1 x 1), x = bottom[1], y = bottom[2]."""
    if len(ctx.inputs) != 3:
        raise ctx.shape_error(f"needs 3 bottoms (a, x, y), got {len(ctx.inputs)}")
    a, x, y = ctx.inputs
    ctx.op("Add", ctx.op("Mul", a, x), y, out=ctx.outputs[0])
    return [ctx.input_shapes[1]]


def softmax(ctx: LayerContext) -> list[Shape]:
    """Softmax over one axis (default 1)."""
    shape = ctx.input_shapes[0]
    axis = axis_index(ctx, ctx.layer.softmax_param.axis, len(shape))
    ctx.op("Softmax", ctx.inputs[0], out=ctx.outputs[0], axis=axis)
    return [shape]


def _caffe_top_k(ctx: LayerContext, x: str, axis: int, size: int, k: int) -> tuple[str, str]:
    """TopK with Caffe's tie order: among equal values the higher index comes first.

    ONNX TopK prefers the lower index, so it runs on the axis reversed and the indices are
    mapped back. Returns (values, indices as floats).
    """
    reverse = ctx.op(
        "Slice",
        x,
        ctx.ints([-1], "start"),
        ctx.ints([np.iinfo(np.int64).min], "end"),
        ctx.ints([axis], "axis"),
        ctx.ints([-1], "step"),
    )
    values, flipped = ctx.node("TopK", [reverse, ctx.ints([k], "k")], 2, axis=axis)
    last = ctx.const(np.int64(size - 1), "last")
    return values, ctx.op("Cast", ctx.op("Sub", last, flipped), to=1)


def argmax(ctx: LayerContext) -> list[Shape]:
    """ArgMax: indices (as floats) of the top_k values, ties to the higher index as in Caffe.

    Without ``axis`` each sample is flattened and the output is N x (1 or 2) x top_k, with the
    values after the indices when ``out_max_val``; with ``axis`` the output replaces that axis by
    top_k and holds the values when ``out_max_val``, else the indices.
    """
    p = ctx.layer.argmax_param
    shape = ctx.input_shapes[0]
    k = int(p.top_k)
    if p.HasField("axis"):
        axis = axis_index(ctx, p.axis, len(shape))
        if k > shape[axis]:
            raise ctx.shape_error(f"top_k {k} exceeds the axis size {shape[axis]}")
        values, indices = _caffe_top_k(ctx, ctx.inputs[0], axis, shape[axis], k)
        ctx.op("Identity", values if p.out_max_val else indices, out=ctx.outputs[0])
        return [(*shape[:axis], k, *shape[axis + 1 :])]
    if k > shapes.count(shape, 1):
        raise ctx.shape_error(f"top_k {k} exceeds the {shapes.count(shape, 1)} values per sample")
    flat = ctx.op("Flatten", ctx.inputs[0], axis=1)
    values, indices = _caffe_top_k(ctx, flat, 1, shapes.count(shape, 1), k)
    index_f = ctx.op("Unsqueeze", indices, ctx.ints([1], "axes"))
    if not p.out_max_val:
        ctx.op("Identity", index_f, out=ctx.outputs[0])
        return [(shape[0], 1, k)]
    value_u = ctx.op("Unsqueeze", values, ctx.ints([1], "axes"))
    ctx.op("Concat", index_f, value_u, out=ctx.outputs[0], axis=1)
    return [(shape[0], 2, k)]


_REDUCTIONS = {1: "ReduceSum", 2: "ReduceL1", 3: "ReduceSumSquare", 4: "ReduceMean"}


def reduction(ctx: LayerContext) -> list[Shape]:
    """Reduction SUM/ASUM/SUMSQ/MEAN over every axis from ``axis`` on, times ``coeff``."""
    p = ctx.layer.reduction_param
    shape = ctx.input_shapes[0]
    axis = axis_index(ctx, p.axis, len(shape))
    op = _REDUCTIONS[p.operation]
    axes = list(range(axis, len(shape)))
    coeff = float(p.coeff)
    out = ctx.outputs[0] if coeff == 1.0 else None
    reduced = reduce(ctx, op, ctx.inputs[0], axes, keepdims=False, out=out)
    if coeff != 1.0:
        ctx.op("Mul", reduced, ctx.const(np.float32(coeff), "coeff"), out=ctx.outputs[0])
    return [tuple(shape[:axis])]


CONVERTERS: dict[str, Converter] = {
    "Eltwise": eltwise,
    "Axpy": axpy,
    "Softmax": softmax,
    "ArgMax": argmax,
    "Reduction": reduction,
}
