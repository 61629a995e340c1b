"""InnerProduct (with ``axis`` and ``transpose``) and Embed."""

from __future__ import annotations

from trtimport.importers.caffe import shapes
from trtimport.importers.caffe.layers.common import axis_index, shape_from
from trtimport.importers.caffe.registry import Converter, LayerContext, Shape


def inner_product(ctx: LayerContext) -> list[Shape]:
    """InnerProduct: axes from ``axis`` on are flattened and multiplied by the weights.

    Caffe stores the weights num_output x K, or K x num_output with ``transpose: true``; Gemm
    reads either layout as stored (``transB``), so no weight is copied. Leading axes other than
    the batch are restored with a Reshape.
    """
    p = ctx.layer.inner_product_param
    x_shape = ctx.input_shapes[0]
    axis = axis_index(ctx, p.axis, len(x_shape))
    k = shapes.count(x_shape, axis)
    n = int(p.num_output)
    weight = ctx.blob(0, (k, n)) if p.transpose else ctx.blob(0, (n, k))
    x = ctx.inputs[0]
    flat = x if axis == 1 and len(x_shape) == 2 else ctx.op("Flatten", x, axis=axis)
    inputs = [flat, ctx.const(weight, "W")]
    if p.bias_term:
        inputs.append(ctx.const(ctx.blob(1, (n,)), "b"))
    trans_b = 0 if p.transpose else 1
    out_shape = (*x_shape[:axis], n)
    if axis == 1:
        ctx.node("Gemm", inputs, ctx.outputs[:1], transB=trans_b)
        return [out_shape]
    product = ctx.node("Gemm", inputs, 1, transB=trans_b)[0]
    ctx.op("Reshape", product, shape_from(ctx, x, axis, [n]), out=ctx.outputs[0])
    return [out_shape]


def embed(ctx: LayerContext) -> list[Shape]:
    """Embed: a table lookup (Gather) of rows of the input_dim x num_output weights, plus bias."""
    p = ctx.layer.embed_param
    n, vocab = int(p.num_output), int(p.input_dim)
    table = ctx.const(ctx.blob(0, (vocab, n)), "W")
    index = ctx.op("Cast", ctx.inputs[0], to=7)  # INT64; Caffe feeds indices as floats
    if p.bias_term:
        gathered = ctx.op("Gather", table, index, axis=0)
        ctx.op("Add", gathered, ctx.const(ctx.blob(1, (n,)), "b"), out=ctx.outputs[0])
    else:
        ctx.op("Gather", table, index, out=ctx.outputs[0], axis=0)
    return [(*ctx.input_shapes[0], n)]


CONVERTERS: dict[str, Converter] = {"InnerProduct": inner_product, "Embed": embed}
