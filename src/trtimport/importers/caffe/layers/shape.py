"""Layers that move data without arithmetic: Reshape, Flatten, Concat, Slice, Split, Crop,
Permute, Tile, Silence, Dropout, Parameter, Input, ShuffleChannel, Interp, Upsample.

Shapes given to ONNX Reshape copy the leading (batch) dimensions with 0 instead of baking in
the prototxt's batch, so the graph stays valid when the batch dimension is made dynamic. For
ranges of sizes (``ctx.dynamic``) the sizes that Reshape, Flatten, Crop, Interp and Upsample
take from a blob are read in the graph (Shape, Slice, integer arithmetic) instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from trtimport.importers.caffe import shapes
from trtimport.importers.caffe.layers.common import axis_index, checked, dims_of, shape_from
from trtimport.importers.caffe.layers.unpool import tiling_pool_of, unpool_by_mask
from trtimport.importers.caffe.registry import Converter, LayerContext, Shape

#: ONNX Slice's "to the end".
_END = int(np.iinfo(np.int64).max)


def _reshape(
    ctx: LayerContext, spec: Sequence[int], out: str, keep_from: int | None = None
) -> None:
    """Reshape to ``spec``; with ``keep_from`` and ``ctx.dynamic``, the bottom's axes from
    ``keep_from`` on are read at run time instead of ``spec``'s last values."""
    rank = len(ctx.input_shapes[0])
    if ctx.dynamic and keep_from is not None and keep_from < rank:
        head = ctx.ints(spec[: len(spec) - (rank - keep_from)], "shape")
        target = ctx.op("Concat", head, dims_of(ctx, ctx.inputs[0], keep_from, rank), axis=0)
    else:
        target = ctx.ints(spec, "shape")
    ctx.op("Reshape", ctx.inputs[0], target, out=out)


def reshape(ctx: LayerContext) -> list[Shape]:
    """Reshape: ``shape`` replaces axes [axis, axis+num_axes); 0 copies a dim, -1 infers one."""
    p = ctx.layer.reshape_param
    bottom = ctx.input_shapes[0]
    dims = [int(d) for d in p.shape.dim]
    result = checked(ctx, shapes.reshape_output, bottom, dims, p.axis, p.num_axes)
    rank = len(bottom)
    start = p.axis + rank + 1 if p.axis < 0 else p.axis
    end = rank if p.num_axes == -1 else start + p.num_axes
    spec = [0] * start + dims + list(bottom[end:])
    _reshape(ctx, spec, ctx.outputs[0], keep_from=end)
    return [result]


def flatten(ctx: LayerContext) -> list[Shape]:
    """Flatten: merge axes ``axis``..``end_axis`` (inclusive)."""
    p = ctx.layer.flatten_param
    bottom = ctx.input_shapes[0]
    result = checked(ctx, shapes.flatten_output, bottom, p.axis, p.end_axis)
    start, end = axis_index(ctx, p.axis), axis_index(ctx, p.end_axis)
    _reshape(ctx, [0] * start + [-1] + list(bottom[end + 1 :]), ctx.outputs[0], keep_from=end + 1)
    return [result]


def _legacy_axis(ctx: LayerContext, param: Any, legacy: str, rank: int) -> int:
    """Caffe: the legacy ``concat_dim``/``slice_dim`` wins over ``axis`` when it is set."""
    axis = getattr(param, legacy) if param.HasField(legacy) else param.axis
    return int(axis_index(ctx, axis, rank))


def concat(ctx: LayerContext) -> list[Shape]:
    """Concat along ``axis`` (or the legacy ``concat_dim``, which wins when set, as in Caffe)."""
    first = ctx.input_shapes[0]
    axis = _legacy_axis(ctx, ctx.layer.concat_param, "concat_dim", len(first))
    total = 0
    for name, shape in zip(ctx.layer.bottom, ctx.input_shapes, strict=False):
        if len(shape) != len(first) or any(
            a != b for i, (a, b) in enumerate(zip(shape, first, strict=False)) if i != axis
        ):
            raise ctx.shape_error(
                f"bottom '{name}' has shape {list(shape)}, which does not fit {list(first)} "
                f"except on axis {axis}"
            )
        total += shape[axis]
    if len(ctx.inputs) == 1:
        ctx.op("Identity", ctx.inputs[0], out=ctx.outputs[0])
    else:
        ctx.node("Concat", ctx.inputs, ctx.outputs[:1], axis=axis)
    return [(*first[:axis], total, *first[axis + 1 :])]


def slice_(ctx: LayerContext) -> list[Shape]:
    """Slice along ``axis`` (or legacy ``slice_dim``) at ``slice_point``s, or into equal parts."""
    p = ctx.layer.slice_param
    bottom = ctx.input_shapes[0]
    axis = _legacy_axis(ctx, p, "slice_dim", len(bottom))
    sizes = checked(ctx, shapes.slice_sizes, bottom[axis], list(p.slice_point), len(ctx.outputs))
    if len(sizes) == 1:
        ctx.op("Identity", ctx.inputs[0], out=ctx.outputs[0])
    else:
        ctx.node("Split", [ctx.inputs[0], ctx.ints(sizes, "split")], ctx.outputs, axis=axis)
    return [(*bottom[:axis], s, *bottom[axis + 1 :]) for s in sizes]


def split(ctx: LayerContext) -> list[Shape]:
    """Split: every top is a copy of the bottom."""
    for out in ctx.outputs:
        ctx.op("Identity", ctx.inputs[0], out=out)
    return [ctx.input_shapes[0]] * len(ctx.outputs)


def dropout(ctx: LayerContext) -> list[Shape]:
    """Dropout at inference: the identity, as BVLC Caffe scales while training.

    With py-faster-rcnn's ``scale_train: false`` training does not scale, so the test-time output
    is x * (1 - dropout_ratio) (caffe-fast-rcnn's DropoutLayer::Forward_cpu, TEST phase).
    """
    p = ctx.layer.dropout_param
    if p.scale_train:
        ctx.op("Identity", ctx.inputs[0], out=ctx.outputs[0])
    else:
        keep = ctx.const(np.float32(1.0 - p.dropout_ratio), "keep")
        ctx.op("Mul", ctx.inputs[0], keep, out=ctx.outputs[0])
    return [ctx.input_shapes[0]]


def silence(ctx: LayerContext) -> list[Shape]:
    """Silence: consumes its bottoms, produces nothing."""
    return []


def crop(ctx: LayerContext) -> list[Shape]:
    """Crop bottom[0] to bottom[1]'s size on the axes from ``axis``, starting at ``offset``."""
    p = ctx.layer.crop_param
    bottom, ref = ctx.input_shapes[0], ctx.input_shapes[1]
    if len(bottom) != len(ref):
        raise ctx.shape_error(f"bottoms have ranks {len(bottom)} and {len(ref)}")
    offsets = checked(ctx, shapes.crop_offsets, bottom, ref, p.axis, list(p.offset))
    start = axis_index(ctx, p.axis)
    axes = list(range(start, len(bottom)))
    starts = ctx.ints([offsets[a] for a in axes], "starts")
    if ctx.dynamic:
        ends = ctx.op("Add", starts, dims_of(ctx, ctx.inputs[1], start, len(bottom)))
    else:
        ends = ctx.ints([offsets[a] + ref[a] for a in axes], "ends")
    ctx.op("Slice", ctx.inputs[0], starts, ends, ctx.ints(axes, "axes"), out=ctx.outputs[0])
    return [(*bottom[:start], *ref[start:])]


def permute(ctx: LayerContext) -> list[Shape]:
    """Permute (SSD): axes in ``order``, the unnamed ones following in their original order."""
    bottom = ctx.input_shapes[0]
    order = [int(o) for o in ctx.layer.permute_param.order]
    if len(set(order)) != len(order) or any(o >= len(bottom) for o in order):
        raise ctx.shape_error(f"order {order} is not a permutation of {len(bottom)} axes")
    perm = order + [a for a in range(len(bottom)) if a not in order]
    ctx.op("Transpose", ctx.inputs[0], out=ctx.outputs[0], perm=perm)
    return [tuple(bottom[a] for a in perm)]


def tile(ctx: LayerContext) -> list[Shape]:
    """Tile: repeat the blob ``tiles`` times along ``axis``."""
    p = ctx.layer.tile_param
    bottom = ctx.input_shapes[0]
    axis = axis_index(ctx, p.axis, len(bottom))
    if p.tiles < 1:
        raise ctx.shape_error(f"tiles must be at least 1, got {p.tiles}")
    repeats = [1] * len(bottom)
    repeats[axis] = int(p.tiles)
    ctx.op("Tile", ctx.inputs[0], ctx.ints(repeats, "repeats"), out=ctx.outputs[0])
    return [tuple(d * r for d, r in zip(bottom, repeats, strict=False))]


def parameter(ctx: LayerContext) -> list[Shape]:
    """Parameter: its blob, shaped by ``parameter_param.shape``, as a constant top."""
    shape = tuple(int(d) for d in ctx.layer.parameter_param.shape.dim)
    value = ctx.blob(0, shape)
    ctx.op("Identity", ctx.const(value, "value"), out=ctx.outputs[0])
    return [shape]


def input_(ctx: LayerContext) -> list[Shape]:
    """Input: declares its tops as graph inputs, with the shapes from ``input_param``."""
    result = [ctx.model.input_shapes[blob] for blob in ctx.layer.top]
    for name, shape in zip(ctx.outputs, result, strict=False):
        ctx.graph.add_input(name, shape)
    return result


def shuffle_channel(ctx: LayerContext) -> list[Shape]:
    """ShuffleChannel (ShuffleNet): N x (g*k) x H x W -> reshape g x k, transpose, reshape."""
    bottom = ctx.input_shapes[0]
    group = int(ctx.layer.shuffle_channel_param.group)
    if len(bottom) < 2 or group < 1 or bottom[1] % group:
        raise ctx.shape_error(f"{bottom[1]} channels cannot be shuffled in {group} groups")
    grouped = ctx.op(
        "Reshape", ctx.inputs[0], ctx.ints([0, group, bottom[1] // group, -1], "grouped")
    )
    swapped = ctx.op("Transpose", grouped, perm=[0, 2, 1, 3])
    ctx.op("Reshape", swapped, ctx.ints([0, *bottom[1:]], "shape"), out=ctx.outputs[0])
    return [bottom]


def _resize(
    ctx: LayerContext, x: str, size: tuple[int, int] | str, out: str, **attrs: object
) -> None:
    """Resize the last two axes to ``size`` (or a size computed in the graph), keeping N and C."""
    sizes = shape_from(ctx, x, 2, size)
    ctx.op("Resize", x, "", "", sizes, out=out, **attrs)


def interp(ctx: LayerContext) -> list[Shape]:
    """Interp (PSPNet/DeepLab forks): bilinear resize with aligned corners.

    The output size comes from ``height``/``width``, ``zoom_factor``/``shrink_factor`` or
    bottom[1]; negative ``pad_beg``/``pad_end`` crop the input first.
    """
    p = ctx.layer.interp_param
    bottom = ctx.input_shapes[0]
    if len(bottom) != 4:
        raise ctx.shape_error(f"needs an N x C x H x W input, got {list(bottom)}")
    if p.pad_beg > 0 or p.pad_end > 0:
        raise ctx.shape_error("pad_beg and pad_end must be 0 or negative (crop)")
    h_in, w_in = (s + p.pad_beg + p.pad_end for s in bottom[2:])
    zoom, shrink = p.HasField("zoom_factor"), p.HasField("shrink_factor")
    if shrink or zoom:
        h_out, w_out = h_in, w_in
        if shrink:
            h_out, w_out = (h_out - 1) // p.shrink_factor + 1, (w_out - 1) // p.shrink_factor + 1
        if zoom:
            z = p.zoom_factor
            h_out, w_out = h_out + (h_out - 1) * (z - 1), w_out + (w_out - 1) * (z - 1)
    elif p.height and p.width:
        h_out, w_out = int(p.height), int(p.width)
    elif len(ctx.inputs) > 1:
        h_out, w_out = ctx.input_shapes[1][2:4]
    else:
        raise ctx.shape_error("give zoom_factor, shrink_factor, height and width, or a 2nd bottom")
    if min(h_out, w_out, h_in, w_in) < 1:
        raise ctx.shape_error(f"output size {h_out}x{w_out} from input {h_in}x{w_in} is empty")
    x = ctx.inputs[0]
    if p.pad_beg or p.pad_end:
        ends = [s + p.pad_end for s in bottom[2:]]
        if ctx.dynamic:
            ends = [p.pad_end or _END] * 2
        x = ctx.op(
            "Slice",
            x,
            ctx.ints([-p.pad_beg] * 2, "starts"),
            ctx.ints(ends, "ends"),
            ctx.ints([2, 3], "axes"),
        )
    size: tuple[int, int] | str = (h_out, w_out)
    if ctx.dynamic and (shrink or zoom):
        size = _interp_size(
            ctx, x, int(p.shrink_factor) if shrink else 1, int(p.zoom_factor) if zoom else 1
        )
    elif ctx.dynamic and not (p.height and p.width):
        size = dims_of(ctx, ctx.inputs[1], 2, 4)
    _resize(
        ctx,
        x,
        size,
        ctx.outputs[0],
        mode="linear",
        coordinate_transformation_mode="align_corners",
    )
    return [(*bottom[:2], h_out, w_out)]


def _interp_size(ctx: LayerContext, x: str, shrink: int, zoom: int) -> str:
    """Interp's output size from ``x``'s at run time: (s - 1) / shrink + 1, then
    s + (s - 1) * (zoom - 1)."""
    size = dims_of(ctx, x, 2, 4)
    one = ctx.ints([1], "one")
    if shrink != 1:
        fewer = ctx.op("Div", ctx.op("Sub", size, one), ctx.ints([shrink], "shrink"))
        size = ctx.op("Add", fewer, one)
    if zoom != 1:
        more = ctx.op("Mul", ctx.op("Sub", size, one), ctx.ints([zoom - 1], "zoom"))
        size = ctx.op("Add", size, more)
    return size


def _upsample_size(ctx: LayerContext) -> tuple[int, int]:
    p = ctx.layer.upsample_param
    bottom = ctx.input_shapes[0]
    if p.HasField("upsample_h") or p.HasField("upsample_w"):
        return int(p.upsample_h), int(p.upsample_w)
    sh = int(p.scale_h) if p.HasField("scale_h") else int(p.scale)
    sw = int(p.scale_w) if p.HasField("scale_w") else int(p.scale)
    return bottom[2] * sh - int(p.pad_out_h), bottom[3] * sw - int(p.pad_out_w)


def upsample(ctx: LayerContext) -> list[Shape]:
    """Upsample: nearest-neighbour by ``scale`` (YOLO ports), or with a mask bottom (SegNet)
    max-unpooling that puts each value where the mask (a Pooling's second top) says.

    A mask from tiling MAX pooling (kernel = stride, no pad) unpools with ops TensorRT builds
    (:mod:`.unpool`); other masks scatter with ScatterElements (ONNX Runtime only).
    """
    bottom = ctx.input_shapes[0]
    h_out, w_out = _upsample_size(ctx)
    if len(ctx.inputs) == 1:
        p = ctx.layer.upsample_param
        size: tuple[int, int] | str = (h_out, w_out)
        if ctx.dynamic and not (p.HasField("upsample_h") or p.HasField("upsample_w")):
            scale = [int(p.scale_h) if p.HasField("scale_h") else int(p.scale)]
            scale.append(int(p.scale_w) if p.HasField("scale_w") else int(p.scale))
            scaled = ctx.op("Mul", dims_of(ctx, ctx.inputs[0], 2, 4), ctx.ints(scale, "scale"))
            trim = ctx.ints([int(p.pad_out_h), int(p.pad_out_w)], "pad_out")
            size = ctx.op("Sub", scaled, trim)
        _resize(
            ctx,
            ctx.inputs[0],
            size,
            ctx.outputs[0],
            mode="nearest",
            coordinate_transformation_mode="asymmetric",
            nearest_mode="floor",
        )
        return [(*bottom[:2], h_out, w_out)]
    if tuple(ctx.input_shapes[1]) != tuple(bottom):
        raise ctx.shape_error(
            f"the mask has shape {list(ctx.input_shapes[1])}, expected {list(bottom)}"
        )
    stride = tiling_pool_of(ctx, ctx.layer.bottom[1])
    rows, cols = bottom[2], bottom[3]
    if stride is not None and _fits(rows, stride[0], h_out) and _fits(cols, stride[1], w_out):
        unpool_by_mask(ctx, ctx.inputs[0], ctx.inputs[1], stride, (h_out, w_out))
        return [(*bottom[:2], h_out, w_out)]
    flat = ctx.ints([0, 0, -1], "flat")
    values = ctx.op("Reshape", ctx.inputs[0], flat)
    where = ctx.op("Cast", ctx.op("Reshape", ctx.inputs[1], flat), to=7)  # INT64
    size = shape_from(ctx, ctx.inputs[0], 2, [h_out * w_out])
    zeros = ctx.op("ConstantOfShape", size)
    scattered = ctx.op("ScatterElements", zeros, where, values, axis=2)
    ctx.op("Reshape", scattered, ctx.ints([0, 0, h_out, w_out], "shape"), out=ctx.outputs[0])
    return [(*bottom[:2], h_out, w_out)]


def _fits(pooled: int, stride: int, size: int) -> bool:
    """Whether ``size`` is what tiling pooling with ``stride`` turned into ``pooled``."""
    return (pooled - 1) * stride < size <= pooled * stride


CONVERTERS: dict[str, Converter] = {
    "Reshape": reshape,
    "Flatten": flatten,
    "Concat": concat,
    "Slice": slice_,
    "Split": split,
    "Dropout": dropout,
    "Silence": silence,
    "Crop": crop,
    "Permute": permute,
    "Tile": tile,
    "Parameter": parameter,
    "Input": input_,
    "ShuffleChannel": shuffle_channel,
    "Interp": interp,
    "Upsample": upsample,
}
