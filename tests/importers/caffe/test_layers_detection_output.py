"""SSD DetectionOutput against a numpy transcription of weiliu89/caffe's DetectionOutputLayer and
against OpenCV 4.14 (which follows it except: no ``eta``, no CORNER_SIZE, rows best-first)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from caffe_harness import rng

from trtimport.importers.caffe.convert import caffe_to_onnx
from trtimport.importers.caffe.parse import load_caffe

FLT_MIN = float(np.finfo(np.float32).min)
CORNER, CENTER_SIZE, CORNER_SIZE = 1, 2, 3


def _decode(prior, var, loc, code, encoded):  # type: ignore[no-untyped-def]
    """DecodeBBox (bbox_util.cpp) for every prior."""
    px0, py0, px1, py1 = prior.T
    pw, ph = px1 - px0, py1 - py0
    v = loc if encoded else loc * var
    if code == CORNER:
        return np.stack([px0 + v[:, 0], py0 + v[:, 1], px1 + v[:, 2], py1 + v[:, 3]], 1)
    if code == CORNER_SIZE:
        return np.stack(
            [px0 + v[:, 0] * pw, py0 + v[:, 1] * ph, px1 + v[:, 2] * pw, py1 + v[:, 3] * ph], 1
        )
    cx, cy = v[:, 0] * pw + (px0 + px1) / 2, v[:, 1] * ph + (py0 + py1) / 2
    w, h = np.exp(v[:, 2]) * pw, np.exp(v[:, 3]) * ph
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)


def _size(b):  # type: ignore[no-untyped-def]
    return 0.0 if b[2] < b[0] or b[3] < b[1] else (b[2] - b[0]) * (b[3] - b[1])


def _jaccard(a, b):  # type: ignore[no-untyped-def]
    """JaccardOverlap (normalized)."""
    if b[0] > a[2] or b[2] < a[0] or b[1] > a[3] or b[3] < a[1]:
        return 0.0
    w, h = min(a[2], b[2]) - max(a[0], b[0]), min(a[3], b[3]) - max(a[1], b[1])
    if w > 0 and h > 0:
        return w * h / (_size(a) + _size(b) - w * h)
    return 0.0


def _nms(boxes, scores, threshold, nms_threshold, eta, top_k):  # type: ignore[no-untyped-def]
    """ApplyNMSFast: stable sort by score, top_k, greedy with the adaptive threshold."""
    order = sorted(
        (i for i in range(len(scores)) if scores[i] > threshold), key=lambda i: -scores[i]
    )
    if -1 < top_k < len(order):
        order = order[:top_k]
    kept: list[int] = []
    adaptive = nms_threshold
    for i in order:
        if all(_jaccard(boxes[i], boxes[k]) <= adaptive for k in kept):
            kept.append(i)
            if eta < 1 and adaptive > 0.5:
                adaptive *= eta
    return kept


def caffe_detection_output(loc, conf, prior, p):  # type: ignore[no-untyped-def]
    """DetectionOutputLayer::Forward_cpu; rows best-first per image (see the module docstring)."""
    classes, priors = p["num_classes"], prior.shape[-1] // 4
    boxes, variances = prior[0, 0].reshape(priors, 4), prior[0, 1].reshape(priors, 4)
    sets = 1 if p["share_location"] else classes
    rows = []
    for n in range(loc.shape[0]):
        pred = loc[n].reshape(priors, sets, 4)
        decoded = [
            _decode(boxes, variances, pred[:, j], p["code"], p["encoded"]) for j in range(sets)
        ]
        scores = conf[n].reshape(priors, classes).T
        found = []
        for c in range(classes):
            if c == p["background"]:
                continue
            b = decoded[0 if p["share_location"] else c]
            for i in _nms(b, scores[c], p["threshold"], p["nms"], p["eta"], p["top_k"]):
                found.append((scores[c][i], c, i))
        if -1 < p["keep_top_k"] < len(found):
            found = sorted(found, key=lambda t: -t[0])[: p["keep_top_k"]]
        for score, c, i in sorted(found, key=lambda t: -t[0]):
            rows.append([n, c, score, *decoded[0 if p["share_location"] else c][i]])
    return np.asarray(rows, np.float32).reshape(-1, 7)


NET = """input: "loc" input_shape {{ dim: {n} dim: {locs} }}
input: "conf" input_shape {{ dim: {n} dim: {confs} }}
input: "feat" input_shape {{ dim: 1 dim: 1 dim: 6 dim: 6 }}
input: "img" input_shape {{ dim: 1 dim: 3 dim: 60 dim: 60 }}
layer {{ name: "prior" type: "PriorBox" bottom: "feat" bottom: "img" top: "prior"
  prior_box_param {{ min_size: 14 max_size: 26 aspect_ratio: 2 flip: true clip: false
    variance: 0.1 variance: 0.1 variance: 0.2 variance: 0.2 }} }}
layer {{ name: "det" type: "DetectionOutput" bottom: "loc" bottom: "conf" bottom: "prior"
  top: "det" detection_output_param {{ num_classes: {classes} share_location: {share}
    background_label_id: {background} code_type: {code} variance_encoded_in_target: {encoded}
    keep_top_k: {keep_top_k} {threshold}
    nms_param {{ nms_threshold: {nms} {top_k} eta: {eta} }} }} }}
"""
PRIORS = 6 * 6 * 4  # min, sqrt(min*max), ratio 2 and 1/2 per cell: heavily overlapping boxes


def _case(**kw):  # type: ignore[no-untyped-def]
    p = dict(
        num_classes=4,
        share_location=True,
        background=0,
        code=CENTER_SIZE,
        encoded=False,
        keep_top_k=50,
        threshold=0.05,
        nms=0.45,
        top_k=40,
        eta=1.0,
        n=1,
    )
    p.update(kw)
    return p


CASES = {
    "center_size": _case(),
    "corner": _case(code=CORNER),
    "not_shared": _case(share_location=False, background=2),
    "no_threshold": _case(threshold=None, num_classes=3),
    "batch_of_two": _case(n=2, keep_top_k=20),
}
NUMPY_ONLY = {
    "eta": _case(eta=0.8, nms=0.7),  # OpenCV ignores eta
    "corner_size": _case(code=CORNER_SIZE),  # OpenCV has no CORNER_SIZE
    # OpenCV wants a one-row prior blob with variance_encoded_in_target
    "encoded": _case(encoded=True, nms=0.3),
    # OpenCV 4.14 crashes (segmentation fault) without nms_param.top_k
    "no_top_k": _case(threshold=None, top_k=-1, keep_top_k=-1, num_classes=3),
}


def _run(tmp_path: Path, p):  # type: ignore[no-untyped-def]
    classes, n = p["num_classes"], p["n"]
    sets = 1 if p["share_location"] else classes
    text = NET.format(
        n=n,
        locs=PRIORS * sets * 4,
        confs=PRIORS * classes,
        classes=classes,
        share=str(p["share_location"]).lower(),
        background=p["background"],
        code={CORNER: "CORNER", CENTER_SIZE: "CENTER_SIZE", CORNER_SIZE: "CORNER_SIZE"}[p["code"]],
        encoded=str(p["encoded"]).lower(),
        keep_top_k=p["keep_top_k"],
        nms=p["nms"],
        eta=p["eta"],
        threshold="" if p["threshold"] is None else f"confidence_threshold: {p['threshold']}",
        top_k="" if p["top_k"] < 0 else f"top_k: {p['top_k']}",
    )
    prototxt = tmp_path / "det.prototxt"
    prototxt.write_text(text)
    r = rng(90)
    scale = 0.5 if p["code"] == CENTER_SIZE else 0.05
    loc = (r.standard_normal((n, PRIORS * sets * 4)) * scale).astype(np.float32)
    logits = r.standard_normal((n, PRIORS, classes)) * 2
    conf = (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).reshape(n, -1)
    feeds = {
        "loc": loc,
        "conf": conf.astype(np.float32),
        "feat": np.zeros((1, 1, 6, 6), np.float32),
        "img": np.zeros((1, 3, 60, 60), np.float32),
    }
    model = load_caffe(prototxt, None)
    conversion = caffe_to_onnx(model, tmp_path / "det.onnx", outputs=["det", "prior"])
    session = ort.InferenceSession(str(conversion.path), providers=["CPUExecutionProvider"])
    det, prior = session.run(["det", "prior"], feeds)
    return prototxt, feeds, det, prior


def _detections(det: np.ndarray) -> np.ndarray:
    rows = det.reshape(-1, 7)
    return rows[rows[:, 1] != -1]


@pytest.mark.parametrize("name", list(CASES) + list(NUMPY_ONLY))
def test_detection_output_matches_caffe(tmp_path: Path, name: str) -> None:
    p = {**CASES, **NUMPY_ONLY}[name]
    _, feeds, det, prior = _run(tmp_path, p)
    q = dict(p, threshold=FLT_MIN if p["threshold"] is None else p["threshold"])
    expected = caffe_detection_output(feeds["loc"], feeds["conf"], prior, q)
    ours = _detections(det)
    assert len(expected) > 10 and ours.shape == expected.shape
    assert np.abs(ours - expected).max() <= 1e-5
    padded = det.reshape(-1, 7)[len(ours) :]
    assert (padded == -1).all()  # fixed rows: the rest are -1


@pytest.mark.parametrize("name", list(CASES))
def test_detection_output_matches_opencv(tmp_path: Path, name: str) -> None:
    prototxt, feeds, det, _ = _run(tmp_path, CASES[name])
    net = cv2.dnn.readNetFromCaffe(str(prototxt))
    for key, value in feeds.items():
        net.setInput(value, key)
    reference = net.forward("det").reshape(-1, 7)
    ours = _detections(det)
    assert ours.shape == reference.shape
    assert np.abs(ours - reference).max() <= 1e-4


SSD = Path(__file__).resolve().parents[2] / "data" / "caffe" / "MobileNet-SSD.prototxt"


@pytest.fixture(scope="module")
def ssd(tmp_path_factory):  # type: ignore[no-untyped-def]
    """MobileNet-SSD with seeded random weights, converted whole (DetectionOutput included)."""
    from trtimport.importers.caffe.make_weights import make_caffe_weights

    folder = tmp_path_factory.mktemp("ssd")
    weights = make_caffe_weights(SSD, folder / "ssd.caffemodel", seed=0).path
    conversion = caffe_to_onnx(load_caffe(SSD, weights), folder / "ssd.onnx")
    return weights, conversion


@pytest.mark.parametrize("image", ["noise", "flat"])
def test_mobilenet_ssd_detections_match_opencv(ssd, image: str) -> None:  # type: ignore[no-untyped-def]
    """Same detections, same order, boxes within 1e-4; the flat image gives near-identical,
    heavily overlapping boxes at every location, so NMS and keep_top_k decide the result."""
    weights, conversion = ssd
    assert conversion.outputs == {"detection_out": (1, 1, 100, 7)}
    r = rng(3)
    x = r.standard_normal((1, 3, 300, 300)) if image == "noise" else np.full((1, 3, 300, 300), 0.2)
    x = x.astype(np.float32)
    session = ort.InferenceSession(str(conversion.path), providers=["CPUExecutionProvider"])
    (det,) = session.run(["detection_out"], {"data": x})
    net = cv2.dnn.readNetFromCaffe(str(SSD), str(weights))
    net.setInput(x)
    reference = net.forward("detection_out").reshape(-1, 7)
    reference = reference[(reference != 0).any(axis=1)]  # OpenCV pads with zero rows
    ours = _detections(det)
    assert len(ours) == len(reference) >= 15
    assert (ours[:, :2] == reference[:, :2]).all()  # image ids and labels, in order
    assert np.abs(ours - reference).max() <= 1e-4


def test_mobilenet_ssd_builds_with_tensorrt(ssd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The NMS is a Loop TensorRT builds (ONNX NonMaxSuppression has no TensorRT-RTX runner)."""
    import trtimport

    _, conversion = ssd
    result = trtimport.convert(
        conversion.path,
        tmp_path / "ssd.engine",
        build_options=trtimport.BuildOptions(progress=False),
    )
    assert result.engine_bytes and [t.name for t in result.outputs] == ["detection_out"]
    ops = {node.op_type for node in onnx.load(str(conversion.path)).graph.node}
    assert "Loop" in ops and "NonMaxSuppression" not in ops


def test_input_shape_override_recomputes_the_priors(ssd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """--input data:1x3x384x384: every shape and the PriorBox constants follow (OpenCV reshapes
    the same net at run time)."""
    from trtimport.importers.caffe.inputs import override_input_shapes

    weights, _ = ssd
    model = load_caffe(SSD, weights)
    notes = override_input_shapes(model, {"data": (1, 3, 384, 384)})
    assert "input 'data' converted at 1x3x384x384 (the prototxt says 1x3x300x300)" in notes[0]
    conversion = caffe_to_onnx(
        model, tmp_path / "ssd384.onnx", outputs=["mbox_priorbox", "detection_out"]
    )
    assert conversion.inputs == {"data": (1, 3, 384, 384)}
    x = rng(5).standard_normal((1, 3, 384, 384)).astype(np.float32)
    session = ort.InferenceSession(str(conversion.path), providers=["CPUExecutionProvider"])
    priors, det = session.run(["mbox_priorbox", "detection_out"], {"data": x})
    net = cv2.dnn.readNetFromCaffe(str(SSD), str(weights))
    net.setInput(x)
    ref_priors, reference = net.forward(["mbox_priorbox", "detection_out"])
    assert priors.shape == ref_priors.shape == (1, 2, 4 * 2892)  # 300x300 has 1917 priors
    assert np.abs(priors - ref_priors).max() <= 1e-6
    reference = reference.reshape(-1, 7)
    reference = reference[(reference != 0).any(axis=1)]
    ours = _detections(det)
    assert ours.shape == reference.shape and np.abs(ours - reference).max() <= 1e-4


def test_input_overrides_are_checked(ssd) -> None:  # type: ignore[no-untyped-def]
    from trtimport.errors import ShapeError, UsageError
    from trtimport.importers.caffe.inputs import override_input_shapes

    model = load_caffe(SSD, ssd[0])
    with pytest.raises(UsageError, match="the net's inputs are data"):
        override_input_shapes(model, {"image": (1, 3, 300, 300)})
    with pytest.raises(ShapeError, match="rank 4"):
        override_input_shapes(model, {"data": (3, 300, 300)})


def test_opencv_reference_runner_gives_the_same_layout(ssd) -> None:  # type: ignore[no-untyped-def]
    """`trtimport verify` compares with OpenCV: its rows come in trtimport's fixed layout."""
    from trtimport.importers.caffe.reference import OpenCVCaffeRunner

    weights, conversion = ssd
    x = np.full((1, 3, 300, 300), 0.2, np.float32)  # few detections: many padding rows
    session = ort.InferenceSession(str(conversion.path), providers=["CPUExecutionProvider"])
    (ours,) = session.run(["detection_out"], {"data": x})
    theirs = OpenCVCaffeRunner(SSD, weights).infer({"data": x})["detection_out"]
    assert theirs.shape == ours.shape and (theirs[0, 0, -1] == -1).all()
    assert np.abs(theirs - ours).max() <= 1e-4
