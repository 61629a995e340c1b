"""SSD's DetectionOutput as ONNX that TensorRT builds (no NonMaxSuppression op).

Follows weiliu89/caffe's ``DetectionOutputLayer::Forward_cpu`` (which OpenCV 4.x follows):
decode every box against its prior (``code_type`` CORNER, CENTER_SIZE or CORNER_SIZE, with or
without ``variance_encoded_in_target``; ``share_location`` or one box set per class), then per
class other than ``background_label_id``: the ``top_k`` scores above ``confidence_threshold``
and greedy NMS with ``nms_threshold`` and ``eta`` (:mod:`trtimport.onnxtools.nms`), then the
``keep_top_k`` best detections over all classes.

Two differences from Caffe, by design. Caffe's output has as many rows as there are detections;
ONNX and TensorRT need a fixed shape, so each image has exactly R = ``keep_top_k`` rows (or
every candidate when ``keep_top_k`` is -1) and the rows after its detections are all -1. And
Caffe writes an image's rows grouped by class; they come here best score first, as OpenCV 4.x
(the reference runtime) and TensorRT's NMS plugins order them — the same rows. The output is
``[1, 1, N * R, 7]``: image id, label, score, xmin, ymin, xmax, ymax.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from trtimport.importers.caffe.proto import caffe_pb2
from trtimport.importers.caffe.registry import Converter, LayerContext, Shape
from trtimport.onnxtools import nms as onnx_nms

#: Above this many IoU entries (classes x top_k x top_k) the graph would not fit in memory.
MAX_IOU_ENTRIES = 64 * 1024 * 1024
CodeType = caffe_pb2.PriorBoxParameter


class Emitter:
    """The :class:`onnx_nms.Emitter` of a layer: helper nodes named after the layer."""

    def __init__(self, ctx: LayerContext) -> None:
        self.ctx = ctx

    def op(self, op: str, *inputs: str, out: str | None = None, **attrs: Any) -> str:
        return self.ctx.op(op, *inputs, out=out, **attrs)

    def node(self, op: str, inputs: list[str], outputs: int, **attrs: Any) -> list[str]:
        return self.ctx.node(op, inputs, outputs, **attrs)

    def const(self, value: Any, hint: str) -> str:
        return self.ctx.const(value, hint)

    def fresh(self, hint: str) -> str:
        return self.ctx.graph.fresh(f"{self.ctx.name}/{hint}")


def detection_output(ctx: LayerContext) -> list[Shape]:
    """DetectionOutput: decode, per-class top_k and greedy NMS, keep_top_k; fixed-size rows."""
    p = ctx.layer.detection_output_param
    if len(ctx.inputs) < 3:
        raise ctx.shape_error(f"needs 3 bottoms (loc, conf, prior), got {len(ctx.inputs)}")
    loc_shape, conf_shape, prior_shape = ctx.input_shapes[:3]
    classes = int(p.num_classes)
    batch = int(loc_shape[0])
    priors = int(np.prod(prior_shape[2:])) // 4 if len(prior_shape) >= 3 else 0
    loc_sets = 1 if p.share_location else classes
    if classes < 1 or priors < 1:
        raise ctx.shape_error(f"num_classes {classes} and the prior blob {list(prior_shape)}")
    if int(np.prod(loc_shape[1:])) != priors * loc_sets * 4:
        raise ctx.shape_error(
            f"loc {list(loc_shape)} does not hold {priors} priors x {loc_sets} x 4 coordinates"
        )
    if int(np.prod(conf_shape[1:])) != priors * classes or conf_shape[0] != batch:
        raise ctx.shape_error(f"conf {list(conf_shape)} does not hold {priors} x {classes} scores")
    labels = [c for c in range(classes) if c != p.background_label_id]
    top_k = priors if not p.nms_param.HasField("top_k") or p.nms_param.top_k < 0 else None
    top_k = top_k if top_k is not None else min(int(p.nms_param.top_k), priors)
    if top_k < 1 or not labels:
        raise ctx.unsupported("nms_param.top_k 0 (or no class but the background) keeps nothing")
    if len(labels) * top_k * top_k > MAX_IOU_ENTRIES:
        raise ctx.unsupported(
            f"{len(labels)} classes x top_k {top_k} candidates need a "
            f"{len(labels)}x{top_k}x{top_k} IoU matrix; set nms_param.top_k lower"
        )
    g = Emitter(ctx)
    threshold = float(p.confidence_threshold) if p.HasField("confidence_threshold") else None
    prior, variance = _prior_parts(ctx)
    rows_per_image = []
    for image in range(batch):
        loc = ctx.op("Gather", ctx.inputs[0], ctx.const(np.array(image, np.int64), "image"), axis=0)
        boxes = _decode(ctx, loc, prior, variance, priors, loc_sets)  # L*P x 4
        conf = ctx.op(
            "Gather", ctx.inputs[1], ctx.const(np.array(image, np.int64), "image"), axis=0
        )
        scores = ctx.op(
            "Gather",
            ctx.op(
                "Transpose", ctx.op("Reshape", conf, ctx.ints([priors, classes], "pc")), perm=[1, 0]
            ),
            ctx.const(np.array(labels, np.int64), "labels"),
            axis=0,
        )  # C' x P
        rows_per_image.append(
            _image_rows(ctx, g, image, boxes, scores, labels, top_k, threshold, p, priors)
        )
    rows = rows_per_image[0] if batch == 1 else ctx.op("Concat", *rows_per_image, axis=0)
    keep = len(labels) * top_k if p.keep_top_k < 0 else min(int(p.keep_top_k), len(labels) * top_k)
    ctx.op("Reshape", rows, ctx.ints([1, 1, batch * keep, 7], "out_shape"), out=ctx.outputs[0])
    return [(1, 1, batch * keep, 7)]


def _prior_parts(ctx: LayerContext) -> tuple[str, str]:
    """The prior boxes and their variances as P x 4 tensors (from the 1 x 2 x P*4 prior blob)."""
    flat = ctx.op("Reshape", ctx.inputs[2], ctx.ints([2, -1, 4], "prior_shape"))
    zero, one = ctx.const(np.array(0, np.int64), "zero"), ctx.const(np.array(1, np.int64), "one")
    return ctx.op("Gather", flat, zero, axis=0), ctx.op("Gather", flat, one, axis=0)


def _decode(
    ctx: LayerContext, loc: str, prior: str, variance: str, priors: int, loc_sets: int
) -> str:
    """Caffe's DecodeBBox for every prior and location set: (L*P) x 4 corners, set-major."""
    p = ctx.layer.detection_output_param
    pred = ctx.op("Reshape", loc, ctx.ints([priors, loc_sets, 4], "loc_shape"))  # P, L, 4
    pr = ctx.op("Unsqueeze", prior, ctx.ints([1], "axis1"))  # P, 1, 4
    var = ctx.op("Unsqueeze", variance, ctx.ints([1], "axis1"))
    if not p.variance_encoded_in_target:
        pred = ctx.op("Mul", pred, var)

    def part(tensor: str, j: int) -> str:
        return ctx.op("Gather", tensor, ctx.const(np.array([j], np.int64), f"c{j}"), axis=2)

    px0, py0, px1, py1 = (part(pr, j) for j in range(4))
    lx0, ly0, lx1, ly1 = (part(pred, j) for j in range(4))
    code = p.code_type
    if code == CodeType.CORNER:
        corners = [
            ctx.op("Add", px0, lx0),
            ctx.op("Add", py0, ly0),
            ctx.op("Add", px1, lx1),
            ctx.op("Add", py1, ly1),
        ]
    else:
        pw, ph = ctx.op("Sub", px1, px0), ctx.op("Sub", py1, py0)
        if code == CodeType.CORNER_SIZE:
            corners = [
                ctx.op("Add", px0, ctx.op("Mul", lx0, pw)),
                ctx.op("Add", py0, ctx.op("Mul", ly0, ph)),
                ctx.op("Add", px1, ctx.op("Mul", lx1, pw)),
                ctx.op("Add", py1, ctx.op("Mul", ly1, ph)),
            ]
        else:  # CENTER_SIZE
            half = ctx.const(np.float32(0.5), "half")
            pcx = ctx.op("Div", ctx.op("Add", px0, px1), ctx.const(np.float32(2.0), "two"))
            pcy = ctx.op("Div", ctx.op("Add", py0, py1), ctx.const(np.float32(2.0), "two"))
            cx = ctx.op("Add", ctx.op("Mul", lx0, pw), pcx)
            cy = ctx.op("Add", ctx.op("Mul", ly0, ph), pcy)
            w = ctx.op("Mul", ctx.op("Exp", lx1), pw)
            h = ctx.op("Mul", ctx.op("Exp", ly1), ph)
            hw, hh = ctx.op("Mul", w, half), ctx.op("Mul", h, half)
            corners = [
                ctx.op("Sub", cx, hw),
                ctx.op("Sub", cy, hh),
                ctx.op("Add", cx, hw),
                ctx.op("Add", cy, hh),
            ]
    decoded = ctx.op("Concat", *corners, axis=2)  # P, L, 4
    set_major = ctx.op("Transpose", decoded, perm=[1, 0, 2])
    return ctx.op("Reshape", set_major, ctx.ints([-1, 4], "boxes"))


def _image_rows(
    ctx: LayerContext,
    g: Emitter,
    image: int,
    boxes: str,
    scores: str,
    labels: list[int],
    top_k: int,
    threshold: float | None,
    p: Any,
    priors: int,
) -> str:
    """One image's R x 7 output rows (detections first, in Caffe's order; then -1 rows)."""
    floor = float(np.finfo(np.float32).min) if threshold is None else threshold
    values, indices, valid = onnx_nms.candidates(g, scores, top_k, floor)
    if p.share_location:
        box_index = indices
    else:  # class c's boxes are set c: flat index c * P + i
        offsets = np.asarray(labels, np.int64)[:, None] * priors
        box_index = ctx.op("Add", indices, ctx.const(offsets, "set_offsets"))
    cand_boxes = ctx.op("Gather", boxes, box_index, axis=0)  # C' x T x 4
    iou = onnx_nms.jaccard_matrix(g, cand_boxes)
    shape = (len(labels), top_k)
    nms = p.nms_param
    kept = onnx_nms.greedy_keep(
        g, iou, valid, shape, float(nms.nms_threshold), float(nms.eta), ctx.opset
    )
    order, row_valid = onnx_nms.keep_top_k_order(
        g, values, kept, len(labels) * top_k, int(p.keep_top_k)
    )
    flat_boxes = ctx.op("Reshape", cand_boxes, ctx.ints([-1, 4], "flat_boxes"))
    flat_scores = ctx.op("Reshape", values, ctx.ints([-1, 1], "flat_scores"))
    label_of = np.repeat(np.asarray(labels, np.float32), top_k)[:, None]
    row_label = ctx.op("Gather", ctx.const(label_of, "label_of"), order, axis=0)
    columns = [
        ctx.op(
            "Mul",
            ctx.op("Unsqueeze", row_valid, ctx.ints([1], "axis1")),
            ctx.const(np.float32(image), "image_id"),
        ),
        row_label,
        ctx.op("Gather", flat_scores, order, axis=0),
        ctx.op("Gather", flat_boxes, order, axis=0),
    ]
    rows = ctx.op("Concat", *columns, axis=1)  # R x 7
    is_valid = ctx.op(
        "Greater",
        ctx.op("Unsqueeze", row_valid, ctx.ints([1], "axis1")),
        ctx.const(np.float32(0.5), "half"),
    )
    return ctx.op("Where", is_valid, rows, ctx.const(np.float32(-1.0), "minus_one"))


CONVERTERS: dict[str, Converter] = {"DetectionOutput": detection_output}
