"""eric612/MobileNet-YOLO's YoloDetectionOutput (YOLOv2 head) against a numpy transcription of
the fork's ``YoloDetectionOutputLayer::Forward_cpu`` (OpenCV 4.14 does not know the layer).

The converted layer has a fixed row count (every candidate box); the fork's rows are the
detections. ``padded`` puts the fork's rows in that layout: its rows, then rows of -1.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from caffe_harness import layer, net_text, rng, run

from trtimport.errors import TrtImportError, UnsupportedLayerError

ANCHORS = [1.08, 1.19, 3.42, 4.41, 6.63, 11.38, 9.42, 5.11, 16.62, 10.52]


def _sigmoid(x: np.float32) -> np.float32:
    return np.float32(1.0) / (np.float32(1.0) + np.exp(-x))


def _candidates(x: np.ndarray, num_box: int, classes: int, biases: np.ndarray) -> list[tuple]:  # type: ignore[type-arg]
    """The fork's per-cell loop over one bottom: (confidence, class, x, y, w, h) in its order
    (image, row j, column i, anchor n); the side is the width, anchor planes channel-major."""
    out = []
    batch, channels, _, side = x.shape
    stride = channels // num_box
    for b in range(batch):
        for j in range(side):
            for i in range(side):
                for n in range(num_box):
                    v = x[b, n * stride : (n + 1) * stride, j, i].astype(np.float32)
                    bx = (np.float32(i) + _sigmoid(v[0])) / np.float32(side)
                    by = (np.float32(j) + _sigmoid(v[1])) / np.float32(side)
                    bw = np.exp(v[2]) * biases[2 * n] / np.float32(side)
                    bh = np.exp(v[3]) * biases[2 * n + 1] / np.float32(side)
                    e = np.exp(v[5 : 5 + classes] - v[5 : 5 + classes].max())
                    prob = e / e.sum(dtype=np.float32)
                    cls = int(np.argmax(prob))  # the first maximum, as its strict '>' scan
                    out.append((_sigmoid(v[4]) * prob[cls], cls, bx, by, bw, bh))
    return out


def _iou(a: tuple, b: tuple) -> float:  # type: ignore[type-arg]
    """box_iou on centre boxes (x, y, w, h): a negative overlap on an axis gives 0."""

    def overlap(x1: float, w1: float, x2: float, w2: float) -> float:
        return min(x1 + w1 / 2, x2 + w2 / 2) - max(x1 - w1 / 2, x2 - w2 / 2)

    w, h = overlap(a[2], a[4], b[2], b[4]), overlap(a[3], a[5], b[3], b[5])
    inter = 0.0 if w < 0 or h < 0 else w * h
    return inter / (a[4] * a[5] + b[4] * b[5] - inter)


def yolo_detection_output_ref(bottoms: list[np.ndarray], p: dict) -> np.ndarray:  # type: ignore[type-arg]
    """Forward_cpu: candidates of bottom 0 then bottom 1 (same anchors) with confidence ≥ the
    threshold, sorted by confidence, ApplyNms across classes (IoU ≥ threshold suppresses); rows
    (0, class + 1, confidence, corners). No detection: N rows (i, -1, ..., -1)."""
    biases = np.asarray(p["biases"], np.float32)
    found = [
        c
        for x in bottoms[:2]
        for c in _candidates(x, p["num_box"], p["num_classes"], biases)
        if c[0] >= np.float32(p["confidence_threshold"])
    ]
    found.sort(key=lambda c: -c[0])  # the fork's std::sort; no ties in these tests
    suppressed: set[int] = set()
    for i in range(len(found)):
        if i in suppressed:
            continue
        for j in range(i + 1, len(found)):
            if j not in suppressed and _iou(found[i], found[j]) >= np.float32(p["nms_threshold"]):
                suppressed.add(j)
    rows = [
        [0, c[1] + 1, c[0], c[2] - c[4] / 2, c[3] - c[5] / 2, c[2] + c[4] / 2, c[3] + c[5] / 2]
        for k, c in enumerate(found)
        if k not in suppressed
    ]
    if not rows:
        rows = [[i, -1, -1, -1, -1, -1, -1] for i in range(bottoms[0].shape[0])]
    return np.asarray(rows, np.float32).reshape(1, 1, -1, 7)


def padded(rows: np.ndarray, count: int) -> np.ndarray:
    """The fork's rows in the converter's layout: ``count`` rows, the rest -1."""
    out = np.full((1, 1, count, 7), -1.0, np.float32)
    out[:, :, : rows.shape[2]] = rows
    return out


def _params(**kw: object) -> dict:  # type: ignore[type-arg]
    p = {
        "num_classes": 3,
        "num_box": 5,
        "confidence_threshold": 0.3,
        "nms_threshold": 0.45,
        "biases": ANCHORS,
    }
    p.update(kw)
    return p


def _text(p: dict, shapes: Sequence[tuple[int, ...]]) -> str:  # type: ignore[type-arg]
    names = [f"x{k}" for k in range(len(shapes))]
    fields = " ".join(f"{k}: {v}" for k, v in p.items() if k != "biases") + "".join(
        f" biases: {b}" for b in p["biases"]
    )
    body = layer(
        "YoloDetectionOutput",
        f"yolo_detection_output_param {{ {fields} }}",
        bottoms=names,
        tops=["det"],
    )
    return net_text(body, dict(zip(names, shapes, strict=True)))


def _grid(shape: tuple[int, ...], seed: int, *, overlapping: bool, num_box: int) -> np.ndarray:
    x = rng(seed).normal(0, 1.5, shape).astype(np.float32)
    if overlapping:  # big boxes near each cell's corner, confident: many overlaps per class
        stride = shape[1] // num_box
        view = x.reshape(shape[0], num_box, stride, *shape[2:])
        view[:, :, 0:2] = rng(seed + 1).normal(3, 0.3, view[:, :, 0:2].shape)
        view[:, :, 2:4] = rng(seed + 2).normal(0.5, 0.3, view[:, :, 2:4].shape)
        view[:, :, 4] = rng(seed + 3).normal(3, 1, view[:, :, 4].shape)
    return x


CASES = {
    "random": (_params(), [(1, 40, 4, 4)], False),
    "overlapping": (_params(), [(1, 40, 5, 5)], True),
    "overlapping-batch2": (_params(nms_threshold=0.3), [(2, 40, 3, 3)], True),
    "two-bottoms": (_params(num_box=2, biases=ANCHORS[:4]), [(1, 16, 4, 4), (1, 16, 2, 2)], True),
    "one-class": (_params(num_classes=1, confidence_threshold=0.2), [(1, 30, 4, 4)], True),
    "nothing-batch2": (_params(confidence_threshold=1.5), [(2, 40, 2, 2)], False),
}


@pytest.mark.parametrize("case", list(CASES))
def test_yolo_detection_output_matches_the_fork(tmp_path: Path, case: str) -> None:
    p, shapes, overlapping = CASES[case]
    xs = [
        _grid(s, 10 * k + 1, overlapping=overlapping, num_box=p["num_box"])
        for k, s in enumerate(shapes)
    ]
    feeds = {f"x{k}": x for k, x in enumerate(xs)}
    ours = run(tmp_path, _text(p, shapes), feeds)["det"]
    theirs = yolo_detection_output_ref(xs, p)
    count = sum(s[0] * s[2] * s[3] * p["num_box"] for s in shapes)
    assert ours.shape == (1, 1, count, 7)
    detections = int((theirs[0, 0, :, 1] >= 0).sum())
    print(f"{case}: {detections} detections of {count} rows")
    if case.startswith("overlapping"):
        assert detections >= 3
    np.testing.assert_array_equal(ours[0, 0, :, :2], padded(theirs, count)[0, 0, :, :2])
    np.testing.assert_allclose(ours, padded(theirs, count), rtol=0, atol=1e-4)


@pytest.mark.parametrize(
    ("p", "shapes", "words"),
    [
        (_params(), [(1, 40, 4, 3)], "square grid"),
        (_params(), [(1, 41, 4, 4)], "41 channels"),
        (_params(biases=ANCHORS[:6]), [(1, 40, 4, 4)], "needs 10"),
    ],
)
def test_yolo_detection_output_bad_shapes_are_named(
    tmp_path: Path,
    p: dict,  # type: ignore[type-arg]
    shapes: list[tuple[int, ...]],
    words: str,
) -> None:
    feeds = {f"x{k}": np.zeros(s, np.float32) for k, s in enumerate(shapes)}
    with pytest.raises(TrtImportError) as caught:
        run(tmp_path, _text(p, shapes), feeds)
    assert words in str(caught.value) and "YoloDetectionOutput" in str(caught.value)


@pytest.mark.parametrize("opset", [17, 18])
def test_an_iou_equal_to_the_threshold_suppresses(tmp_path: Path, opset: int) -> None:
    """ApplyNms drops a box whose IoU is >= nms_threshold: one cell, two anchors of widths 1
    and 2 cells on one centre, IoU exactly 0.5 (each product exact in float32)."""
    p = _params(num_classes=1, num_box=2, nms_threshold=0.5, biases=[1, 1, 2, 1])
    x = np.zeros((1, 12, 1, 1), np.float32)
    x[0, 4], x[0, 10] = 2.0, 1.0  # objectness: the narrow box first
    ours = run(tmp_path, _text(p, [x.shape]), {"x0": x}, opset=opset)["det"]
    theirs = yolo_detection_output_ref([x], p)
    assert theirs.shape == (1, 1, 1, 7)
    np.testing.assert_allclose(ours, padded(theirs, 2), rtol=0, atol=1e-6)
    assert ours[0, 0, 1].tolist() == [-1.0] * 7


def test_yolov3_detection_output_is_refused_with_the_reason(tmp_path: Path) -> None:
    body = layer(
        "Yolov3DetectionOutput",
        "yolov3_detection_output_param { num_classes: 2 }",
        bottoms=["a", "b"],
        tops=["det"],
    )
    text = net_text(body, {"a": (1, 21, 2, 2), "b": (1, 21, 4, 4)})
    feeds = {"a": np.zeros((1, 21, 2, 2)), "b": np.zeros((1, 21, 4, 4))}
    with pytest.raises(UnsupportedLayerError) as caught:
        run(tmp_path, text, feeds)
    message = str(caught.value)
    assert "Yolov3DetectionOutput" in message and "(boxes x classes)^2" in message, message
    assert "--output" in message
