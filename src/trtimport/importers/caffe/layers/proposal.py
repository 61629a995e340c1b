"""Faster R-CNN's Proposal layer (``proposal_param``, as OpenCV's caffe.proto has it).

Follows py-faster-rcnn's ``ProposalLayer.forward`` at test time: the anchors of
``generate_anchors`` (``base_size``, ``ratio``s, ``scale``s, NumPy's round-half-to-even) shifted
by ``feat_stride`` over the feature map, moved by the predicted deltas (``bbox_transform_inv``),
clipped to the image (``im_info`` height, width), boxes narrower or lower than ``min_size`` x
scale dropped, the ``pre_nms_topn`` best foreground scores, greedy NMS with ``nms_thresh`` on
pixel boxes (width x2 - x1 + 1, :mod:`trtimport.onnxtools.nms`), then ``post_nms_topn``.

As for DetectionOutput, the number of regions is fixed: ``post_nms_topn`` rows (batch index, x1,
y1, x2, y2), best first; rows after the last region are all 0 (a region ROIPooling can read),
and a second top, the regions' scores, is -1 there.
"""

from __future__ import annotations

import numpy as np

from trtimport.importers.caffe.layers.detection_output import Emitter
from trtimport.importers.caffe.registry import Converter, LayerContext, Shape
from trtimport.onnxtools import nms


def anchors(base_size: int, ratios: list[float], scales: list[float]) -> np.ndarray:
    """py-faster-rcnn's ``generate_anchors``: A x 4 boxes around (base_size - 1) / 2."""
    w = h = float(base_size)
    cx = cy = 0.5 * (base_size - 1)
    out = []
    for ratio in ratios:
        rw = float(np.round(np.sqrt(w * h / ratio)))
        rh = float(np.round(rw * ratio))
        for scale in scales:
            sw, sh = rw * scale, rh * scale
            out.append(
                [cx - 0.5 * (sw - 1), cy - 0.5 * (sh - 1), cx + 0.5 * (sw - 1), cy + 0.5 * (sh - 1)]
            )
    return np.asarray(out, np.float32)


def proposal(ctx: LayerContext) -> list[Shape]:
    """Proposal: anchors, deltas, clipping, min size, top-N, NMS, top-N; fixed-size rows."""
    p = ctx.layer.proposal_param
    if len(ctx.inputs) != 3:
        raise ctx.shape_error(f"needs 3 bottoms (scores, deltas, im_info), got {len(ctx.inputs)}")
    scores_shape, deltas_shape, _ = ctx.input_shapes
    ratios = [float(r) for r in p.ratio] or [0.5, 1.0, 2.0]
    scales = [float(s) for s in p.scale] or [8.0, 16.0, 32.0]
    base = anchors(int(p.base_size), ratios, scales)
    count = len(base)
    if len(scores_shape) != 4 or scores_shape[0] != 1 or scores_shape[1] != 2 * count:
        raise ctx.shape_error(
            f"scores {list(scores_shape)} must be 1 x {2 * count} x H x W (one image; "
            f"background and foreground for {count} anchors)"
        )
    height, width = scores_shape[2:]
    if tuple(deltas_shape) != (1, 4 * count, height, width):
        raise ctx.shape_error(f"deltas {list(deltas_shape)} must be 1 x {4 * count} x H x W")
    total = height * width * count
    pre = total if p.pre_nms_topn <= 0 else min(int(p.pre_nms_topn), total)
    post = pre if p.post_nms_topn <= 0 else min(int(p.post_nms_topn), pre)
    if pre * pre > 64 * 1024 * 1024:
        raise ctx.unsupported(f"pre_nms_topn {pre} needs a {pre}x{pre} IoU matrix; set it lower")
    stride = float(p.feat_stride)
    sy, sx = np.meshgrid(np.arange(height) * stride, np.arange(width) * stride, indexing="ij")
    shifts = np.stack([sx, sy, sx, sy], axis=-1).reshape(-1, 1, 4)
    grid = (shifts + base[None]).reshape(-1, 4).astype(np.float32)  # (h, w, anchor) order
    fg = ctx.op(
        "Slice",
        ctx.inputs[0],
        ctx.ints([count], "start"),
        ctx.ints([2 * count], "end"),
        ctx.ints([1], "axis"),
    )
    scores = ctx.op("Reshape", ctx.op("Transpose", fg, perm=[0, 2, 3, 1]), ctx.ints([1, -1], "row"))
    deltas = ctx.op(
        "Reshape", ctx.op("Transpose", ctx.inputs[1], perm=[0, 2, 3, 1]), ctx.ints([-1, 4], "boxes")
    )
    boxes = _transform(ctx, grid, deltas)
    info = ctx.op("Reshape", ctx.inputs[2], ctx.ints([-1], "flat"))

    def item(j: int) -> str:
        return ctx.op("Gather", info, ctx.const(np.array(j, np.int64), f"info{j}"), axis=0)

    im_h, im_w, im_scale = item(0), item(1), item(2)
    one = ctx.const(np.float32(1.0), "one")
    zero = ctx.const(np.float32(0.0), "zero")
    x0, y0, x1, y1 = (
        ctx.op("Gather", boxes, ctx.const(np.array([j], np.int64), f"c{j}"), axis=1)
        for j in range(4)
    )
    xmax, ymax = ctx.op("Sub", im_w, one), ctx.op("Sub", im_h, one)
    x0, x1 = (ctx.op("Max", ctx.op("Min", v, xmax), zero) for v in (x0, x1))
    y0, y1 = (ctx.op("Max", ctx.op("Min", v, ymax), zero) for v in (y0, y1))
    clipped = ctx.op("Concat", x0, y0, x1, y1, axis=1)  # total x 4
    smallest = ctx.op("Mul", ctx.const(np.float32(p.min_size), "min_size"), im_scale)
    wide = ctx.op("GreaterOrEqual", ctx.op("Add", ctx.op("Sub", x1, x0), one), smallest)
    tall = ctx.op("GreaterOrEqual", ctx.op("Add", ctx.op("Sub", y1, y0), one), smallest)
    big = ctx.op("Reshape", ctx.op("And", wide, tall), ctx.ints([1, -1], "row"))
    kept_scores = ctx.op("Where", big, scores, ctx.const(np.float32(-np.inf), "minus_inf"))
    g = Emitter(ctx)
    lowest = float(np.finfo(np.float32).min)
    values, indices, valid = nms.candidates(g, kept_scores, pre, lowest)
    cand = ctx.op("Gather", clipped, indices, axis=0)  # 1 x pre x 4
    iou = nms.jaccard_matrix(g, cand, pixels=True)
    kept = nms.greedy_keep(g, iou, valid, (1, pre), float(p.nms_thresh), 1.0, ctx.opset)
    order, row_valid = nms.keep_top_k_order(g, values, kept, pre, post)
    rois = ctx.op("Gather", ctx.op("Reshape", cand, ctx.ints([-1, 4], "boxes")), order, axis=0)
    batch_index = ctx.const(np.zeros((post, 1), np.float32), "batch_index")
    column = ctx.op("Unsqueeze", row_valid, ctx.ints([1], "axis1"))
    rows = ctx.op("Mul", ctx.op("Concat", batch_index, rois, axis=1), column)
    ctx.op("Identity", rows, out=ctx.outputs[0])
    if len(ctx.outputs) > 1:
        best = ctx.op("Gather", ctx.op("Reshape", values, ctx.ints([-1], "flat")), order, axis=0)
        padded = ctx.op(
            "Where",
            ctx.op("Greater", row_valid, ctx.const(np.float32(0.5), "half")),
            best,
            ctx.const(np.float32(-1.0), "minus_one"),
        )
        ctx.op("Unsqueeze", padded, ctx.ints([1], "axis1"), out=ctx.outputs[1])
        return [(post, 5), (post, 1)]
    return [(post, 5)]


def _transform(ctx: LayerContext, grid: np.ndarray, deltas: str) -> str:
    """py-faster-rcnn's ``bbox_transform_inv``: anchors moved by the deltas (total x 4)."""
    widths = grid[:, 2] - grid[:, 0] + 1.0
    heights = grid[:, 3] - grid[:, 1] + 1.0
    centers = np.stack([grid[:, 0] + 0.5 * widths, grid[:, 1] + 0.5 * heights], 1)
    sizes = np.stack([widths, heights], 1)
    shift = ctx.op("Slice", deltas, ctx.ints([0], "s0"), ctx.ints([2], "s2"), ctx.ints([1], "a1"))
    scale = ctx.op("Slice", deltas, ctx.ints([2], "s2"), ctx.ints([4], "s4"), ctx.ints([1], "a1"))
    size_const = ctx.const(sizes.astype(np.float32), "sizes")
    center = ctx.op(
        "Add", ctx.op("Mul", shift, size_const), ctx.const(centers.astype(np.float32), "centers")
    )
    half = ctx.op(
        "Mul", ctx.op("Mul", ctx.op("Exp", scale), size_const), ctx.const(np.float32(0.5), "half")
    )
    return ctx.op("Concat", ctx.op("Sub", center, half), ctx.op("Add", center, half), axis=1)


CONVERTERS: dict[str, Converter] = {"Proposal": proposal}
