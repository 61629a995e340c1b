"""Faster R-CNN's Proposal layer against a numpy transcription of py-faster-rcnn's
ProposalLayer.forward (TEST phase) and its generate_anchors, bbox_transform_inv, clip_boxes and
py_cpu_nms."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from caffe_harness import build_prototxt, layer, net_text, rng, run

from trtimport.importers.caffe.layers.proposal import anchors


def generate_anchors(base_size=16, ratios=(0.5, 1, 2), scales=(8, 16, 32)):  # type: ignore[no-untyped-def]
    """generate_anchors.py: ratio then scale enumeration around the base box."""

    def whctrs(a):  # type: ignore[no-untyped-def]
        w, h = a[2] - a[0] + 1, a[3] - a[1] + 1
        return w, h, a[0] + 0.5 * (w - 1), a[1] + 0.5 * (h - 1)

    def mk(ws, hs, x, y):  # type: ignore[no-untyped-def]
        ws, hs = np.asarray(ws)[:, None], np.asarray(hs)[:, None]
        return np.hstack(
            (x - 0.5 * (ws - 1), y - 0.5 * (hs - 1), x + 0.5 * (ws - 1), y + 0.5 * (hs - 1))
        )

    base = np.array([1, 1, base_size, base_size]) - 1
    w, h, x, y = whctrs(base)
    ws = np.round(np.sqrt(w * h / np.asarray(ratios)))
    ratio_anchors = mk(ws, np.round(ws * np.asarray(ratios)), x, y)
    out = []
    for a in ratio_anchors:
        w, h, x, y = whctrs(a)
        out.append(mk(w * np.asarray(scales), h * np.asarray(scales), x, y))
    return np.vstack(out)


def py_cpu_nms(dets, thresh):  # type: ignore[no-untyped-def]
    x1, y1, x2, y2, scores = dets.T
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = scores.argsort()[::-1]
    keep = []
    while order.size > 0:
        i = order[0]
        keep.append(i)
        w = np.maximum(0.0, np.minimum(x2[i], x2[order[1:]]) - np.maximum(x1[i], x1[order[1:]]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[order[1:]]) - np.maximum(y1[i], y1[order[1:]]) + 1)
        inter = w * h
        ovr = inter / (areas[i] + areas[order[1:]] - inter)
        order = order[np.where(ovr <= thresh)[0] + 1]
    return keep


def proposal_forward(cls_prob, deltas, im_info, stride, pre, post, nms_thresh, min_size):  # type: ignore[no-untyped-def]
    base = generate_anchors()
    a = base.shape[0]
    scores = cls_prob[:, a:, :, :]
    height, width = scores.shape[-2:]
    sx, sy = np.meshgrid(np.arange(width) * stride, np.arange(height) * stride)
    shifts = np.vstack((sx.ravel(), sy.ravel(), sx.ravel(), sy.ravel())).T
    boxes = (base.reshape((1, a, 4)) + shifts.reshape((1, -1, 4)).transpose((1, 0, 2))).reshape(
        -1, 4
    )
    d = deltas.transpose((0, 2, 3, 1)).reshape((-1, 4))
    s = scores.transpose((0, 2, 3, 1)).reshape((-1, 1))
    widths, heights = boxes[:, 2] - boxes[:, 0] + 1.0, boxes[:, 3] - boxes[:, 1] + 1.0
    cx, cy = boxes[:, 0] + 0.5 * widths, boxes[:, 1] + 0.5 * heights
    px, py = d[:, 0] * widths + cx, d[:, 1] * heights + cy
    pw, ph = np.exp(d[:, 2]) * widths, np.exp(d[:, 3]) * heights
    p = np.stack([px - 0.5 * pw, py - 0.5 * ph, px + 0.5 * pw, py + 0.5 * ph], 1)
    p[:, 0::2] = np.maximum(np.minimum(p[:, 0::2], im_info[1] - 1), 0)
    p[:, 1::2] = np.maximum(np.minimum(p[:, 1::2], im_info[0] - 1), 0)
    ws, hs = p[:, 2] - p[:, 0] + 1, p[:, 3] - p[:, 1] + 1
    keep = np.where((ws >= min_size * im_info[2]) & (hs >= min_size * im_info[2]))[0]
    p, s = p[keep], s[keep]
    order = s.ravel().argsort()[::-1][:pre]
    p, s = p[order], s[order]
    keep = py_cpu_nms(np.hstack((p, s)), nms_thresh)[:post]
    return np.hstack((np.zeros((len(keep), 1)), p[keep])), s[keep]


def test_anchors_are_generate_anchors() -> None:
    assert np.array_equal(anchors(16, [0.5, 1, 2], [8, 16, 32]), generate_anchors())


@pytest.mark.parametrize("im_scale", [1.0, 1.6])
def test_proposal_matches_py_faster_rcnn(tmp_path: Path, im_scale: float) -> None:
    h, w, a = 6, 8, 9
    r = rng(80)
    logits = r.standard_normal((1, 2, a, h, w))
    prob = (np.exp(logits) / np.exp(logits).sum(1, keepdims=True)).reshape(1, 2 * a, h, w)
    deltas = r.standard_normal((1, 4 * a, h, w)) * 0.3
    im_info = np.array([[h * 16, w * 16, im_scale]])
    params = (
        "proposal_param { feat_stride: 16 pre_nms_topn: 300 post_nms_topn: 60 nms_thresh: 0.7 }"
    )
    text = net_text(
        layer("Proposal", params, ("prob", "deltas", "im_info"), ("rois", "scores")),
        {"prob": prob.shape, "deltas": deltas.shape, "im_info": im_info.shape},
    )
    feeds = {"prob": prob, "deltas": deltas, "im_info": im_info}
    out = run(tmp_path, text, {k: v.astype(np.float32) for k, v in feeds.items()})
    f32 = {k: v.astype(np.float32).astype(np.float64) for k, v in feeds.items()}
    rois, scores = proposal_forward(
        f32["prob"], f32["deltas"], f32["im_info"][0], 16, 300, 60, 0.7, 16
    )
    count = len(rois)
    assert 10 < count <= 60 and out["rois"].shape == (60, 5)
    assert np.abs(out["rois"][:count] - rois).max() <= 1e-3  # pixels, float32 vs float64
    assert np.abs(out["scores"][:count] - scores).max() <= 1e-6
    assert (out["rois"][count:] == 0).all() and (out["scores"][count:] == -1).all()


def test_proposal_matches_opencv_without_min_size(tmp_path: Path) -> None:
    """OpenCV 4.14's Proposal follows py-faster-rcnn but never drops small boxes (its min_size
    is ignored), so it agrees with min_size: 0."""
    import cv2

    h, w, a = 6, 8, 9
    r = rng(81)
    logits = r.standard_normal((1, 2, a, h, w))
    prob = (np.exp(logits) / np.exp(logits).sum(1, keepdims=True)).reshape(1, 2 * a, h, w)
    feeds = {
        "prob": prob.astype(np.float32),
        "deltas": (r.standard_normal((1, 4 * a, h, w)) * 0.3).astype(np.float32),
        "im_info": np.array([[h * 16, w * 16, 1.0]], np.float32),
    }
    params = (
        "proposal_param { feat_stride: 16 pre_nms_topn: 300 post_nms_topn: 60 nms_thresh: 0.7 "
        "min_size: 0 ratio: 0.5 ratio: 1 ratio: 2 scale: 8 scale: 16 scale: 32 }"
    )
    text = net_text(
        layer("Proposal", params, ("prob", "deltas", "im_info"), ("rois", "scores")),
        {k: v.shape for k, v in feeds.items()},
    )
    out = run(tmp_path, text, feeds)
    net = cv2.dnn.readNetFromCaffe(str(tmp_path / "net.prototxt"))
    for key, value in feeds.items():
        net.setInput(value, key)
    reference = net.forward("L").reshape(-1, 5)
    assert reference.shape == out["rois"].shape == (60, 5)
    assert np.abs(out["rois"] - reference).max() <= 1e-4


def test_proposal_builds_with_tensorrt(tmp_path: Path) -> None:
    params = "proposal_param { feat_stride: 16 pre_nms_topn: 100 post_nms_topn: 20 }"
    text = net_text(
        layer("Proposal", params, ("prob", "deltas", "im_info"), ("rois",)),
        {"prob": (1, 18, 4, 5), "deltas": (1, 36, 4, 5), "im_info": (1, 3)},
    )
    result = build_prototxt(tmp_path, text, "proposal")
    assert result.engine_bytes and [t.name for t in result.outputs] == ["rois"]
