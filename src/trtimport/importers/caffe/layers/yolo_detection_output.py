"""eric612/MobileNet-YOLO's ``YoloDetectionOutput`` (YOLOv2 head) as ONNX that TensorRT builds.

Follows the fork's ``YoloDetectionOutputLayer::Forward_cpu``. Each bottom is N x C x S x S with
C = ``num_box`` x (4 + 1 + ``num_classes``): per cell (row j, column i) and anchor n, the box
x = (i + sigmoid(tx)) / S, y = (j + sigmoid(ty)) / S, w = exp(tw) * biases[2n] / S,
h = exp(th) * biases[2n+1] / S, objectness sigmoid(to), the softmax of the class logits and its
first maximum; the confidence is objectness * that class probability, kept when it is at least
``confidence_threshold``. The candidates of every image and of the second bottom (the fork reads
at most two, with the same anchors) are pooled in the fork's order (bottom, image, row, column,
anchor), sorted by confidence, and one greedy NMS **across classes** drops every box whose IoU
(on the unclipped centre boxes) with a kept better one is at least ``nms_threshold``. A row is
(0, class + 1, confidence, x - w/2, y - h/2, x + w/2, y + h/2): the fork writes image id 0 for
every row.

Caffe's row count is the number of kept boxes; here it is fixed, R = every candidate (the sum
of N x S x S x ``num_box`` over the bottoms), the rows after the detections all -1. With no
detection the fork writes N rows (i, -1, ..., -1): the first N rows carry those image ids.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from trtimport.importers.caffe.layers.detection_output import MAX_IOU_ENTRIES, Emitter
from trtimport.importers.caffe.registry import Converter, LayerContext, Shape
from trtimport.onnxtools import nms as onnx_nms


class _Candidates(NamedTuple):
    """One bottom's decoded boxes, in the fork's order."""

    corners: str  # M x 4: xmin, ymin, xmax, ymax
    confidence: str  # M: objectness x best class probability
    label: str  # M x 1: best class + 1
    boxes: int  # M = N x S x S x num_box


def _below(value: float) -> float:
    """The float32 just under ``value``: ``x >= value`` is ``x > _below(value)`` in float32."""
    return float(np.nextafter(np.float32(value), np.float32(-np.inf)))


def yolo_detection_output(ctx: LayerContext) -> list[Shape]:
    """YoloDetectionOutput: decode, class-agnostic greedy NMS, fixed-size rows."""
    p = ctx.layer.yolo_detection_output_param
    classes, boxes_per_cell = int(p.num_classes), int(p.num_box)
    if not 1 <= len(ctx.inputs) <= 2:
        raise ctx.shape_error(
            f"has {len(ctx.inputs)} bottoms; the fork's layer reads one or two grids"
        )
    if classes < 1 or boxes_per_cell < 1:
        raise ctx.shape_error(
            f"num_classes {classes} and num_box {boxes_per_cell} must be at least 1"
        )
    if len(p.biases) < 2 * boxes_per_cell:
        raise ctx.shape_error(
            f"has {len(p.biases)} biases; num_box {boxes_per_cell} needs {2 * boxes_per_cell} "
            "(an anchor width and height per box, in grid cells)"
        )
    batch = int(ctx.input_shapes[0][0]) if ctx.input_shapes[0] else 0
    stride = 5 + classes
    parts = [_decode(ctx, k, batch, boxes_per_cell, stride) for k in range(len(ctx.inputs))]
    total = sum(part.boxes for part in parts)
    if total * total > MAX_IOU_ENTRIES:
        raise ctx.unsupported(
            f"{total} candidate boxes need a {total}x{total} IoU matrix; convert a smaller "
            "input (--input) or cut the net before the layer (--output)"
        )

    def joined(tensors: list[str]) -> str:
        return tensors[0] if len(tensors) == 1 else ctx.op("Concat", *tensors, axis=0)

    corners = joined([part.corners for part in parts])
    confidence = joined([part.confidence for part in parts])
    label = joined([part.label for part in parts])
    g = Emitter(ctx)
    scores = ctx.op("Reshape", confidence, ctx.ints([1, total], "row"))
    values, indices, valid = onnx_nms.candidates(
        g, scores, total, _below(float(p.confidence_threshold))
    )
    cand_boxes = ctx.op("Gather", corners, indices, axis=0)  # 1 x T x 4
    iou = onnx_nms.jaccard_matrix(g, cand_boxes)
    kept = onnx_nms.greedy_keep(
        g, iou, valid, (1, total), _below(float(p.nms_threshold)), 1.0, ctx.opset
    )
    order, row_valid = onnx_nms.keep_top_k_order(g, values, kept, total, -1)
    flat_index = ctx.op("Gather", ctx.op("Reshape", indices, ctx.ints([-1], "flat")), order)
    valid_col = ctx.op("Unsqueeze", row_valid, ctx.ints([1], "axis1"))
    is_valid = ctx.op("Greater", valid_col, ctx.const(np.float32(0.5), "half"))
    # No detection: the fork's N rows (i, -1, ...); otherwise image id 0 on every row.
    any_kept = ctx.op("Gather", is_valid, ctx.const(np.array([0], np.int64), "first"), axis=0)
    empty_ids = np.full((total, 1), -1.0, np.float32)
    empty_ids[: min(batch, total), 0] = np.arange(min(batch, total), dtype=np.float32)
    minus_one = ctx.const(np.float32(-1.0), "minus_one")
    padding_id = ctx.op("Where", any_kept, minus_one, ctx.const(empty_ids, "empty_ids"))
    image_id = ctx.op("Where", is_valid, ctx.const(np.float32(0.0), "zero"), padding_id)
    columns = [
        ctx.op("Gather", label, flat_index, axis=0),
        ctx.op("Unsqueeze", ctx.op("Gather", confidence, flat_index, axis=0), ctx.ints([1], "a1")),
        ctx.op("Gather", corners, flat_index, axis=0),
    ]
    rows = ctx.op(
        "Where",
        is_valid,
        ctx.op("Concat", *columns, axis=1),
        ctx.const(np.float32(-1.0), "minus_one"),
    )
    out = ctx.op("Concat", image_id, rows, axis=1)  # R x 7
    ctx.op("Reshape", out, ctx.ints([1, 1, total, 7], "out_shape"), out=ctx.outputs[0])
    return [(1, 1, total, 7)]


def _decode(ctx: LayerContext, k: int, batch: int, boxes_per_cell: int, stride: int) -> _Candidates:
    """Bottom ``k``'s candidates: corners (M x 4), confidence (M), label + 1 (M x 1), M."""
    p = ctx.layer.yolo_detection_output_param
    shape = ctx.input_shapes[k]
    if len(shape) != 4 or int(shape[0]) != batch:
        raise ctx.shape_error(f"bottom {k} is {list(shape)}; the fork reads N x C x S x S grids")
    _, channels, height, width = (int(d) for d in shape)
    if height != width:
        raise ctx.shape_error(
            f"bottom {k} is {height}x{width}; the fork reads a square grid (its side is the "
            "width, for rows and columns alike)"
        )
    if channels != boxes_per_cell * stride:
        raise ctx.shape_error(
            f"bottom {k} has {channels} channels; num_box {boxes_per_cell} x (4 coordinates + "
            f"objectness + num_classes {stride - 5}) = {boxes_per_cell * stride}"
        )
    side = width
    count = batch * side * side * boxes_per_cell
    grid = ctx.op(
        "Reshape", ctx.inputs[k], ctx.ints([batch, boxes_per_cell, stride, side, side], "grid")
    )
    cells = ctx.op("Transpose", grid, perm=[0, 3, 4, 1, 2])  # N, row, column, anchor, values
    flat = ctx.op("Reshape", cells, ctx.ints([count, stride], "cells"))

    def column(start: int, end: int) -> str:
        return ctx.op(
            "Slice",
            flat,
            ctx.ints([start], "start"),
            ctx.ints([end], "end"),
            ctx.ints([1], "axis1"),
        )

    rows, cols, anchors = np.meshgrid(
        np.arange(side), np.arange(side), np.arange(boxes_per_cell), indexing="ij"
    )
    col_of = np.tile(cols.reshape(-1), batch).astype(np.float32)[:, None]
    row_of = np.tile(rows.reshape(-1), batch).astype(np.float32)[:, None]
    anchor = np.tile(anchors.reshape(-1), batch)
    biases = np.asarray(p.biases, np.float32)
    side_c = ctx.const(np.float32(side), "side")
    x = ctx.op(
        "Div", ctx.op("Add", ctx.const(col_of, "col"), ctx.op("Sigmoid", column(0, 1))), side_c
    )
    y = ctx.op(
        "Div", ctx.op("Add", ctx.const(row_of, "row"), ctx.op("Sigmoid", column(1, 2))), side_c
    )
    w = ctx.op(
        "Div",
        ctx.op("Mul", ctx.op("Exp", column(2, 3)), ctx.const(biases[2 * anchor][:, None], "aw")),
        side_c,
    )
    h = ctx.op(
        "Div",
        ctx.op(
            "Mul", ctx.op("Exp", column(3, 4)), ctx.const(biases[2 * anchor + 1][:, None], "ah")
        ),
        side_c,
    )
    half_w = ctx.op("Div", w, ctx.const(np.float32(2.0), "two"))
    half_h = ctx.op("Div", h, ctx.const(np.float32(2.0), "two"))
    corners = ctx.op(
        "Concat",
        ctx.op("Sub", x, half_w),
        ctx.op("Sub", y, half_h),
        ctx.op("Add", x, half_w),
        ctx.op("Add", y, half_h),
        axis=1,
    )
    objectness = ctx.op("Sigmoid", column(4, 5))
    probabilities = ctx.op("Softmax", column(5, stride), axis=1)
    if ctx.opset >= 18:  # ReduceMax takes its axes as an input from opset 18 on
        best = ctx.op("ReduceMax", probabilities, ctx.ints([1], "axis1"), keepdims=1)
    else:
        best = ctx.op("ReduceMax", probabilities, axes=[1], keepdims=1)
    confidence = ctx.op("Reshape", ctx.op("Mul", objectness, best), ctx.ints([count], "count"))
    argmax = ctx.op("ArgMax", probabilities, axis=1, keepdims=1, select_last_index=0)
    label = ctx.op("Add", ctx.op("Cast", argmax, to=1), ctx.const(np.float32(1.0), "one"))
    return _Candidates(corners, confidence, label, count)


CONVERTERS: dict[str, Converter] = {"YoloDetectionOutput": yolo_detection_output}
