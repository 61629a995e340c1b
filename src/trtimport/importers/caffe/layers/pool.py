"""Pooling (MAX, AVE, STOCHASTIC at test time, global) and SPP, with Caffe's output sizes.

ONNX's ceil mode and average divisor differ from Caffe's, so the converters compute Caffe's
output size (:func:`shapes.pool_output`), pad the end explicitly so that floor mode yields it,
and correct the AVE divisor with a constant when Caffe's (which counts the pad but not the
ceil overhang) differs from ONNX's.

For ranges of sizes (``ctx.dynamic``) the trailing pad is one that gives Caffe's size at every
size (:func:`shapes.pool_end_pad_any_size`), and an AVE divisor that differs from both of
ONNX's is computed in the graph from the input's size (:func:`_caffe_divisor_ratio`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from trtimport.importers.caffe import shapes
from trtimport.importers.caffe.layers.common import pool_geometry
from trtimport.importers.caffe.layers.unpool import block_mask, tiles
from trtimport.importers.caffe.registry import Converter, LayerContext, Shape

MAX, AVE, STOCHASTIC = 0, 1, 2


def emit_pool(
    ctx: LayerContext,
    x: str,
    x_shape: Shape,
    method: int,
    geometry: tuple[list[int], list[int], list[int]],
    out: str | None = None,
    *,
    ceil: bool = True,
    mask: str | None = None,
) -> tuple[str, Shape]:
    """2-D pooling of ``x`` by Caffe's rules; returns the output name and shape.

    ``mask`` names a second output of MAX pooling: Caffe's argmax mask, the index of each
    maximum within its H x W plane, as floats.
    """
    kernel, stride, pad = geometry
    sizes = x_shape[2:]
    clip = any(pad)  # Caffe clips both axes when either is padded
    try:
        outs = [
            shapes.pool_output(s, k, st, p, ceil=ceil, clip=clip)
            for s, k, st, p in zip(sizes, *geometry, strict=False)
        ]
    except ValueError as err:
        raise ctx.shape_error(str(err)) from err
    if ctx.dynamic:
        return _emit_pool_any_size(ctx, x, method, geometry, (*x_shape[:2], *outs), out, ceil, mask)
    end = [
        shapes.pool_end_pad(s, k, st, p, o)
        for s, k, st, p, o in zip(sizes, *geometry, outs, strict=False)
    ]
    for k, st, e in zip(kernel, stride, end, strict=True):
        if e >= k:
            raise ctx.shape_error(
                f"with stride {st} larger than kernel {k}, Caffe's ceil rounding adds a window "
                "that lies wholly outside the input (Caffe outputs -FLT_MAX or NaN there); use "
                "round_mode: FLOOR or a kernel at least as large as the stride"
            )
    attrs: dict[str, Any] = {"kernel_shape": kernel, "strides": stride, "pads": pad + end}
    out_shape = (*x_shape[:2], *outs)
    if method == MAX and mask is None:
        return ctx.op("MaxPool", x, out=out, **attrs), out_shape
    if method == MAX and mask is not None and tiles(kernel, stride, pad) and len(sizes) == 2:
        ctx.op("Identity", block_mask(ctx, x, x_shape, kernel, tuple(outs)), out=mask)
        return ctx.op("MaxPool", x, out=out, **attrs), out_shape
    if method == MAX and mask is not None:
        # ONNX indices count from the start of the whole tensor; Caffe's from the H x W plane.
        outputs = [out or ctx.graph.fresh(ctx.name), ctx.graph.fresh(f"{mask}/indices")]
        pooled, index = ctx.node("MaxPool", [x], outputs, **attrs)
        plane = ctx.const(np.int64(sizes[0] * sizes[1]), "plane")
        ctx.op("Cast", ctx.op("Mod", index, plane), out=mask, to=1)
        return pooled, out_shape
    ratios = [
        np.asarray(shapes.ave_pool_divisors(s, k, st, p, o), dtype=np.float32)
        for s, k, st, p, o in zip(sizes, *geometry, outs, strict=False)
    ]
    correction = np.outer(ratios[0], ratios[1]) if len(ratios) == 2 else ratios[0]
    if method == STOCHASTIC:
        # Caffe's test-time stochastic pooling: sum(x^2) / sum(x) over the window.
        squares = ctx.op("AveragePool", ctx.op("Mul", x, x), count_include_pad=0, **attrs)
        plain = ctx.op("AveragePool", x, count_include_pad=0, **attrs)
        return ctx.op("Div", squares, plain, out=out), out_shape
    if np.all(correction == 1.0):
        return ctx.op("AveragePool", x, out=out, count_include_pad=0, **attrs), out_shape
    if all(e <= p for e, p in zip(end, pad, strict=False)):
        return ctx.op("AveragePool", x, out=out, count_include_pad=1, **attrs), out_shape
    pooled = ctx.op("AveragePool", x, count_include_pad=0, **attrs)
    return ctx.op("Mul", pooled, ctx.const(correction, "divisor"), out=out), out_shape


def _emit_pool_any_size(
    ctx: LayerContext,
    x: str,
    method: int,
    geometry: tuple[list[int], list[int], list[int]],
    out_shape: Shape,
    out: str | None,
    ceil: bool,
    mask: str | None,
) -> tuple[str, Shape]:
    """:func:`emit_pool` with nodes that give Caffe's result at every input size."""
    kernel, stride, pad = geometry
    if mask is not None:
        raise ctx.unsupported(
            "a MAX pooling mask (for unpooling) holds plane indices computed for one input "
            "size, so it cannot take a range of sizes"
        )
    try:
        end = [
            shapes.pool_end_pad_any_size(k, s, p, ceil=ceil, clip=any(pad))
            for k, s, p in zip(kernel, stride, pad, strict=True)
        ]
    except ValueError as err:
        raise ctx.unsupported(
            f"{err}; a range of sizes needs round_mode: FLOOR or padding"
        ) from err
    attrs: dict[str, Any] = {"kernel_shape": kernel, "strides": stride, "pads": pad + end}
    if method == MAX:
        return ctx.op("MaxPool", x, out=out, **attrs), out_shape
    if method == STOCHASTIC:
        squares = ctx.op("AveragePool", ctx.op("Mul", x, x), count_include_pad=0, **attrs)
        plain = ctx.op("AveragePool", x, count_include_pad=0, **attrs)
        return ctx.op("Div", squares, plain, out=out), out_shape
    # Caffe divides by the window's extent within [-pad, size + pad): the full kernel when no
    # window reaches past size + pad (end == pad), the in-image count when there is no pad.
    if end == pad:
        return ctx.op("AveragePool", x, out=out, count_include_pad=1, **attrs), out_shape
    pooled = ctx.op("AveragePool", x, count_include_pad=0, **attrs)
    if not any(pad):
        return ctx.op("Identity", pooled, out=out), out_shape
    ratio = _caffe_divisor_ratio(ctx, x, kernel, stride, pad, end)
    return ctx.op("Mul", pooled, ratio, out=out), out_shape


def _caffe_divisor_ratio(
    ctx: LayerContext, x: str, kernel: list[int], stride: list[int], pad: list[int], end: list[int]
) -> str:
    """Per output position: (in-image count) / (Caffe's count), 1 x 1 x OH x OW, from the size.

    Both counts are window sums of ones, computed with Conv: over the image alone, padded by
    ``pad`` and ``end`` with zeros, and over the image grown by ``pad`` on each side (Caffe's
    extent), padded by ``end - pad`` at the end.
    """
    size = ctx.op(
        "Slice",
        ctx.op("Shape", x),
        ctx.ints([2], "hw_start"),
        ctx.ints([4], "hw_end"),
        ctx.ints([0], "hw_axis"),
    )
    plane = ctx.op("Concat", ctx.ints([1, 1], "one_plane"), size, axis=0)
    one = ctx.const(np.float32(1), "one")
    ones = ctx.op("Add", ctx.op("ConstantOfShape", plane), one)  # float zeros, plus one
    window = ctx.const(np.ones((1, 1, *kernel), np.float32), "window")
    common: dict[str, Any] = {"kernel_shape": kernel, "strides": stride}
    inside = ctx.op("Conv", ones, window, pads=pad + end, **common)
    grown = ctx.op("Pad", ones, ctx.ints([0, 0, *pad, 0, 0, *pad], "caffe_extent"), one)
    caffe = ctx.op(
        "Conv",
        grown,
        window,
        pads=[0, 0] + [e - p for e, p in zip(end, pad, strict=True)],
        **common,
    )
    return ctx.op("Div", inside, caffe)


def _geometry(ctx: LayerContext) -> tuple[list[int], list[int], list[int]]:
    return pool_geometry(ctx.layer.pooling_param)


def rounds_up(p: Any) -> bool:
    """Whether a PoolingParameter rounds its output size up.

    BVLC's ``round_mode`` (CEIL/FLOOR) and the ``ceil_mode`` flag of OpenCV's caffe.proto and the
    DenseNet/ResNeXt forks (BVLC pull request 3057) both choose it; either asking for floor wins,
    as each fork's code only knows its own field (whose default is ceil).
    """
    return bool(p.round_mode == p.CEIL and p.ceil_mode)


def pooling(ctx: LayerContext) -> list[Shape]:
    """Pooling: MaxPool/AveragePool with Caffe's sizes, or GlobalMax/AveragePool."""
    p = ctx.layer.pooling_param
    x_shape = ctx.input_shapes[0]
    if len(x_shape) != 4:
        raise ctx.shape_error(f"pooling needs an N x C x H x W input, got {list(x_shape)}")
    if not p.avg_include_pad and p.pool == AVE:
        raise ctx.unsupported(
            "avg_include_pad: false (Intel Caffe) divides by the window's count inside the "
            "input, which is not converted; Caffe's divisor is avg_include_pad: true"
        )
    mask = ctx.outputs[1] if len(ctx.outputs) > 1 else None
    if mask is not None and (p.pool != MAX or p.global_pooling):
        raise ctx.shape_error("only MAX pooling over windows has a second (mask) top")
    if p.global_pooling:
        if p.pad or p.pad_h or p.pad_w:
            raise ctx.shape_error("global pooling takes no padding")
        if p.pool == STOCHASTIC:
            geometry = ([*x_shape[2:]], [1, 1], [0, 0])
            return [emit_pool(ctx, ctx.inputs[0], x_shape, p.pool, geometry, ctx.outputs[0])[1]]
        op = "GlobalMaxPool" if p.pool == MAX else "GlobalAveragePool"
        ctx.op(op, ctx.inputs[0], out=ctx.outputs[0])
        return [(*x_shape[:2], 1, 1)]
    kernel, stride, pad = _geometry(ctx)
    if min(kernel) <= 0 or min(stride) <= 0:
        raise ctx.shape_error(f"kernel {kernel} and stride {stride} must be positive")
    _, shape = emit_pool(
        ctx,
        ctx.inputs[0],
        x_shape,
        p.pool,
        (kernel, stride, pad),
        ctx.outputs[0],
        ceil=rounds_up(p),
        mask=mask,
    )
    return [shape] * len(ctx.outputs)


def spp(ctx: LayerContext) -> list[Shape]:
    """SPP: one pooling per pyramid level (2^l bins a side), flattened and concatenated."""
    p = ctx.layer.spp_param
    x_shape = ctx.input_shapes[0]
    if len(x_shape) != 4:
        raise ctx.shape_error(f"SPP needs an N x C x H x W input, got {list(x_shape)}")
    height = int(p.pyramid_height)
    if height < 1:
        raise ctx.shape_error("pyramid_height must be at least 1")
    pieces: list[str] = []
    total = 0
    for level in range(height):
        bins = 2**level
        kernel = [-(-s // bins) for s in x_shape[2:]]
        pad = [(k * bins - s + 1) // 2 for k, s in zip(kernel, x_shape[2:], strict=False)]
        geometry = (kernel, list(kernel), pad)
        if height == 1:
            _, shape = emit_pool(ctx, ctx.inputs[0], x_shape, p.pool, geometry, ctx.outputs[0])
            return [shape]
        pooled, shape = emit_pool(ctx, ctx.inputs[0], x_shape, p.pool, geometry)
        pieces.append(ctx.op("Flatten", pooled, axis=1))
        total += shapes.count(shape, 1)
    ctx.op("Concat", *pieces, out=ctx.outputs[0], axis=1)
    return [(x_shape[0], total)]


CONVERTERS: dict[str, Converter] = {"Pooling": pooling, "SPP": spp}
