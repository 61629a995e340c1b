"""Greedy per-class non-maximum suppression in plain ONNX ops that TensorRT builds.

TensorRT-RTX 1.7 parses ONNX ``NonMaxSuppression`` but cannot build it ("no runners"), and its
selection rules are not Caffe's (no adaptive ``eta``, no per-class ``top_k`` before NMS). This
module spells the SSD/Caffe algorithm (``ApplyNMSFast``) with TopK, Gather, elementwise ops and
one ONNX ``Loop`` (TensorRT builds it as a loop), on fixed shapes:

1. :func:`candidates`: per class, the ``top_k`` scores above the threshold, best first (ties:
   lower index first, as Caffe's stable sort);
2. :func:`jaccard_matrix`: the IoU of every pair of a class's candidates, as Caffe's
   ``JaccardOverlap`` on normalized boxes (disjoint or empty boxes overlap 0);
3. :func:`greedy_keep`: walk the candidates in order; one is kept when it overlaps no kept one
   by more than the threshold, which shrinks by ``eta`` after each kept box while above 0.5;
4. :func:`keep_top_k_order`: the kept detections of all classes, the ``keep_top_k`` best by
   score, best first (the order of OpenCV's DetectionOutput and of TensorRT's NMS plugins;
   Caffe writes the same rows grouped by class), padded to a fixed count.

It builds through an :class:`Emitter` (any graph builder with ``op``/``const``/``fresh``), so
every importer that meets an NMS (Caffe's DetectionOutput, UFF's NMS_TRT) can share it.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

#: ONNX TensorProto data types (the Loop body is built with ``onnx.helper``, imported only
#: when a net has an NMS: plain Caffe conversions do not import ``onnx``).
FLOAT, INT64, BOOL = 1, 7, 9


class Emitter(Protocol):
    """What the NMS needs from a graph builder."""

    def op(self, op: str, *inputs: str, out: str | None = None, **attrs: Any) -> str:
        """Emit a one-output node; returns its output name."""
        ...

    def node(self, op: str, inputs: list[str], outputs: int, **attrs: Any) -> list[str]:
        """Emit a node with ``outputs`` fresh outputs; returns their names."""
        ...

    def const(self, value: Any, hint: str) -> str:
        """Add a constant; returns its name."""
        ...

    def fresh(self, hint: str) -> str:
        """A tensor name not used anywhere yet."""
        ...


def candidates(g: Emitter, scores: str, top_k: int, threshold: float) -> tuple[str, str, str]:
    """Per class (rows of ``scores``, C x P): the best ``top_k`` scores above ``threshold``.

    Returns (values C x top_k, box indices C x top_k int64, valid C x top_k float 0/1); a slot
    whose score is not above the threshold is invalid. ``top_k`` must be at most P.
    """
    above = g.op("Greater", scores, g.const(np.float32(threshold), "threshold"))
    masked = g.op("Where", above, scores, g.const(np.float32(-np.inf), "minus_inf"))
    values, indices = g.node(
        "TopK", [masked, g.const(np.array([top_k], np.int64), "k")], 2, axis=1, largest=1, sorted=1
    )
    valid = g.op(
        "Cast",
        g.op("Greater", values, g.const(np.float32(threshold), "threshold")),
        to=FLOAT,
    )
    return values, indices, valid


def jaccard_matrix(g: Emitter, boxes: str, *, pixels: bool = False) -> str:
    """IoU of every pair of boxes (C x T x 4, corners) per class: C x T x T.

    As Caffe's ``JaccardOverlap`` (normalized): 0 when the boxes are disjoint or the
    intersection is empty; a box with xmax < xmin or ymax < ymin has size 0. With ``pixels``,
    boxes count their end pixels (width x2 - x1 + 1), as Faster R-CNN's ``nms`` does.
    """
    a = g.op("Unsqueeze", boxes, g.const(np.array([2], np.int64), "axis2"))  # C,T,1,4
    b = g.op("Unsqueeze", boxes, g.const(np.array([1], np.int64), "axis1"))  # C,1,T,4
    ax0, ay0, ax1, ay1 = _coordinates(g, a)
    bx0, by0, bx1, by1 = _coordinates(g, b)
    width = g.op("Sub", g.op("Min", ax1, bx1), g.op("Max", ax0, bx0))
    height = g.op("Sub", g.op("Min", ay1, by1), g.op("Max", ay0, by0))
    if pixels:
        one_pixel = g.const(np.float32(1.0), "one")
        width, height = g.op("Add", width, one_pixel), g.op("Add", height, one_pixel)
        ax1, ay1, bx1, by1 = (g.op("Add", t, one_pixel) for t in (ax1, ay1, bx1, by1))
    zero = g.const(np.float32(0.0), "zero")
    meets = g.op("And", g.op("Greater", width, zero), g.op("Greater", height, zero))
    inter = g.op("Mul", width, height)
    union = g.op(
        "Sub", g.op("Add", _size(g, ax0, ay0, ax1, ay1), _size(g, bx0, by0, bx1, by1)), inter
    )
    one = g.const(np.float32(1.0), "one")
    iou = g.op("Div", inter, g.op("Where", meets, union, one))
    return g.op("Where", meets, iou, zero)


def _coordinates(g: Emitter, boxes: str) -> list[str]:
    """The four corner coordinates of boxes (last axis), that axis dropped."""
    return [
        g.op("Gather", boxes, g.const(np.array(j, np.int64), f"coord{j}"), axis=-1)
        for j in range(4)
    ]


def _size(g: Emitter, x0: str, y0: str, x1: str, y1: str) -> str:
    """Caffe's BBoxSize: width * height, 0 for an inverted box."""
    w, h = g.op("Sub", x1, x0), g.op("Sub", y1, y0)
    zero = g.const(np.float32(0.0), "zero")
    inverted = g.op("Or", g.op("Less", w, zero), g.op("Less", h, zero))
    return g.op("Where", inverted, zero, g.op("Mul", w, h))


def greedy_keep(
    g: Emitter,
    iou: str,
    valid: str,
    shape: tuple[int, int],
    threshold: float,
    eta: float,
    opset: int,
) -> str:
    """Caffe's greedy NMS over each class's candidates in order: the kept mask (C x T float).

    Candidate ``i`` is kept when valid and its IoU with every kept candidate before it is at
    most the class's threshold; after a kept candidate the threshold is multiplied by ``eta``
    while it is above 0.5 (``eta`` < 1). One ONNX Loop of T iterations; ``shape`` is (C, T).
    """
    from onnx import helper

    classes, count = shape
    name = g.fresh("nms_loop")
    eye = g.const(np.eye(count, dtype=np.float32), "eye")
    keep0 = g.const(np.zeros((classes, count), np.float32), "keep0")
    thr0 = g.const(np.full((classes,), threshold, np.float32), "threshold0")

    def local(hint: str) -> str:
        return g.fresh(f"{name}/{hint}")

    i, cond, keep, thr = local("i"), local("cond"), local("keep"), local("thr")
    nodes = []

    def body_op(op: str, *inputs: str, **attrs: Any) -> str:
        out = local(op)
        nodes.append(helper.make_node(op, list(inputs), [out], name=out, **attrs))
        return out

    row = body_op("Gather", iou, i, axis=1)  # C x T: IoU of candidate i with each candidate
    thr_col = body_op("Unsqueeze", thr, g.const(np.array([1], np.int64), "axis1"))
    over = body_op("Cast", body_op("Greater", row, thr_col), to=FLOAT)
    overlapping = body_op("Mul", over, keep)
    if opset >= 18:  # ReduceMax takes its axes as an input from opset 18 on
        axis1 = g.const(np.array([1], np.int64), "axis1")
        suppressed = body_op("ReduceMax", overlapping, axis1, keepdims=0)
    else:
        suppressed = body_op("ReduceMax", overlapping, axes=[1], keepdims=0)
    one = g.const(np.float32(1.0), "one")
    kept_i = body_op("Mul", body_op("Gather", valid, i, axis=1), body_op("Sub", one, suppressed))
    onehot = body_op(
        "Unsqueeze", body_op("Gather", eye, i, axis=0), g.const(np.array([0], np.int64), "axis0")
    )
    keep_next = body_op(
        "Add",
        keep,
        body_op(
            "Mul", body_op("Unsqueeze", kept_i, g.const(np.array([1], np.int64), "axis1")), onehot
        ),
    )
    thr_next = thr
    if eta < 1.0:
        half = g.const(np.float32(0.5), "half")
        shrink = body_op("Mul", kept_i, body_op("Cast", body_op("Greater", thr, half), to=FLOAT))
        factor = body_op(
            "Add", one, body_op("Mul", shrink, g.const(np.float32(eta - 1.0), "eta_minus_one"))
        )
        thr_next = body_op("Mul", thr, factor)
    cond_out = body_op("Identity", cond)
    keep_out = body_op("Identity", keep_next)
    thr_out = body_op("Identity", thr_next)
    float_t = FLOAT
    body = helper.make_graph(
        nodes,
        name,
        [
            helper.make_tensor_value_info(i, INT64, []),
            helper.make_tensor_value_info(cond, BOOL, []),
            helper.make_tensor_value_info(keep, float_t, [classes, count]),
            helper.make_tensor_value_info(thr, float_t, [classes]),
        ],
        [
            helper.make_tensor_value_info(cond_out, BOOL, []),
            helper.make_tensor_value_info(keep_out, float_t, [classes, count]),
            helper.make_tensor_value_info(thr_out, float_t, [classes]),
        ],
    )
    trips = g.const(np.array(count, np.int64), "trips")
    true = g.const(np.array(True), "true")
    kept, _ = g.node("Loop", [trips, true, keep0, thr0], 2, body=body)
    return kept


def keep_top_k_order(
    g: Emitter, scores: str, kept: str, total: int, keep_top_k: int
) -> tuple[str, str]:
    """Rows of the output: flat candidate indices (class-major) and their validity (0/1).

    ``scores`` and ``kept`` are C x T. The kept candidates of all classes, the ``keep_top_k``
    best by score (all when it is -1), best first; equal scores keep class-then-rank order.
    Invalid rows come last. Returns (indices R int64, valid R float), R = min(keep_top_k, C*T).
    """
    rows = total if keep_top_k < 0 else min(keep_top_k, total)
    flat = g.op("Reshape", scores, g.const(np.array([-1], np.int64), "flat"))
    flat_kept = g.op("Reshape", kept, g.const(np.array([-1], np.int64), "flat"))
    is_kept = g.op("Greater", flat_kept, g.const(np.float32(0.5), "half"))
    masked = g.op("Where", is_kept, flat, g.const(np.float32(-np.inf), "minus_inf"))
    k = g.const(np.array([rows], np.int64), "rows")
    best, chosen = g.node("TopK", [masked, k], 2, axis=0, largest=1, sorted=1)
    valid = g.op("Greater", best, g.const(np.float32(-np.inf), "minus_inf"))
    return chosen, g.op("Cast", valid, to=FLOAT)
