"""SegNet/ENet max-unpooling without MaxPool's indices output, which TensorRT cannot import.

For MAX pooling whose windows tile the input (kernel = stride, no padding; a last partial window
from ceil rounding is fine), the argmax mask is computed from the windows themselves: the input
is cut into k x k blocks, each block compared with its maximum, and the first equal position in
row-major order kept — Caffe's rule, since its loop replaces the maximum only on a strictly
greater value. The mask value is that position's index in the H x W plane (as Caffe stores it).

Upsample with such a mask (scale = the pooling stride) is then a nearest-neighbour upsampling
of the values, kept where the upsampled mask equals the position's own index: each value lands
where its mask says, zeros elsewhere. Everything is Reshape, Transpose, Reduce, Equal, MatMul and
Resize, which TensorRT builds. Other geometries keep the ONNX MaxPool indices path.
"""

from __future__ import annotations

import numpy as np

from trtimport.importers.caffe.layers.common import pool_geometry, reduce
from trtimport.importers.caffe.registry import LayerContext, Shape

FLOAT = 1


def tiles(kernel: list[int], stride: list[int], pad: list[int]) -> bool:
    """Whether pooling windows tile the input (so the mask can be computed without indices)."""
    return kernel == stride and not any(pad)


def block_mask(ctx: LayerContext, x: str, x_shape: Shape, kernel: list[int], out_hw: Shape) -> str:
    """Caffe's argmax mask of tiling MAX pooling (N x C x OH x OW, plane indices as floats)."""
    (kh, kw), (oh, ow) = kernel, out_hw
    h, w = x_shape[2], x_shape[3]
    padded = x
    if oh * kh != h or ow * kw != w:  # ceil rounding: a partial last window
        pads = ctx.ints([0, 0, 0, 0, 0, 0, oh * kh - h, ow * kw - w], "pads")
        lowest = ctx.const(np.float32(np.finfo(np.float32).min), "lowest")
        padded = ctx.op("Pad", x, pads, lowest, mode="constant")
    blocks = ctx.op("Reshape", padded, ctx.ints([0, 0, oh, kh, ow, kw], "blocks"))
    blocks = ctx.op("Transpose", blocks, perm=[0, 1, 2, 4, 3, 5])
    blocks = ctx.op("Reshape", blocks, ctx.ints([0, 0, oh, ow, kh * kw], "window"))
    largest = reduce(ctx, "ReduceMax", blocks, [4], keepdims=True)
    equal = ctx.op("Cast", ctx.op("Equal", blocks, largest), to=FLOAT)
    before = np.triu(np.ones((kh * kw, kh * kw), np.float32), k=1)  # [j, m] = 1 if j < m
    earlier = ctx.op("MatMul", equal, ctx.const(before, "earlier"))
    first = ctx.op(
        "Mul",
        equal,
        ctx.op("Cast", ctx.op("Less", earlier, ctx.const(np.float32(0.5), "half")), to=FLOAT),
    )
    rows = np.arange(oh * kh).reshape(oh, kh)[:, None, :, None]
    cols = np.arange(ow * kw).reshape(ow, kw)[None, :, None, :]
    index = (rows * w + cols).reshape(oh, ow, kh * kw).astype(np.float32)
    return reduce(
        ctx, "ReduceSum", ctx.op("Mul", first, ctx.const(index, "plane_index")), [4], keepdims=False
    )


def unpool_by_mask(
    ctx: LayerContext, values: str, mask: str, scale: tuple[int, int], out_hw: tuple[int, int]
) -> None:
    """Write ``ctx.outputs[0]``: each value at the plane index its mask gives, zeros elsewhere.

    Exact when every mask index lies in its value's ``scale`` block (tiling pooling).
    """
    n_c_h_w = ctx.input_shapes[0]
    sh, sw = scale
    full = (n_c_h_w[2] * sh, n_c_h_w[3] * sw)
    factors = ctx.const(np.array([1, 1, sh, sw], np.float32), "scales")

    def nearest(tensor: str) -> str:
        return ctx.op(
            "Resize",
            tensor,
            "",
            factors,
            mode="nearest",
            coordinate_transformation_mode="asymmetric",
            nearest_mode="floor",
        )

    h_out, w_out = out_hw
    index = (np.arange(full[0])[:, None] * w_out + np.arange(full[1])[None, :]).astype(np.float32)
    here = ctx.op("Cast", ctx.op("Equal", nearest(mask), ctx.const(index, "plane_index")), to=FLOAT)
    placed = ctx.op("Mul", nearest(values), here)
    if full == (h_out, w_out):
        ctx.op("Identity", placed, out=ctx.outputs[0])
        return
    ctx.op(
        "Slice",
        placed,
        ctx.ints([0, 0], "starts"),
        ctx.ints([h_out, w_out], "ends"),
        ctx.ints([2, 3], "axes"),
        out=ctx.outputs[0],
    )


def tiling_pool_of(ctx: LayerContext, mask_blob: str) -> tuple[int, int] | None:
    """The stride of the tiling MAX Pooling whose second top is ``mask_blob``, if it is one."""
    for layer in ctx.model.net.layer:
        if layer.type == "Pooling" and len(layer.top) > 1 and layer.top[1] == mask_blob:
            kernel, stride, pad = pool_geometry(layer.pooling_param)
            if tiles(kernel, stride, pad) and not layer.pooling_param.global_pooling:
                return stride[0], stride[1]
    return None
