"""PriorBox against OpenCV's implementation of the SSD layer, ROIPooling against Caffe's loops,
and the documented refusal of Python layers."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from caffe_harness import close, layer, net_text, rng, run

from trtimport.errors import ShapeError, UnsupportedLayerError


def ssd_prior_box(
    feature_hw,
    image_hw,
    min_sizes,
    max_sizes,
    ratios,
    flip,
    clip,
    variance,
    step_hw=None,
    offset=0.5,
):  # type: ignore[no-untyped-def]
    """weiliu89/caffe PriorBoxLayer::Forward_cpu, vectorised over the feature map."""
    (fh, fw), (ih, iw) = feature_hw, image_hw
    sh, sw = step_hw or (ih / fh, iw / fw)
    ars = [1.0]
    for r in ratios:
        if all(abs(r - a) >= 1e-6 for a in ars):
            ars += [r, 1 / r] if flip else [r]
    sizes = []
    for k, m in enumerate(min_sizes):
        sizes.append((m, m))
        if max_sizes:
            sizes.append((math.sqrt(m * max_sizes[k]),) * 2)
        sizes += [(m * math.sqrt(a), m / math.sqrt(a)) for a in ars if abs(a - 1) >= 1e-6]
    bw, bh = (np.array(v) for v in zip(*sizes, strict=True))
    cy, cx = np.meshgrid(
        (np.arange(fh) + offset) * sh, (np.arange(fw) + offset) * sw, indexing="ij"
    )
    cx, cy = cx[..., None], cy[..., None]
    boxes = np.stack(
        [(cx - bw / 2) / iw, (cy - bh / 2) / ih, (cx + bw / 2) / iw, (cy + bh / 2) / ih], axis=-1
    ).reshape(-1)
    if clip:
        boxes = boxes.clip(0, 1)
    var = np.resize(np.asarray(variance, dtype=float), 4) if len(variance) == 4 else variance * 4
    return np.stack([boxes, np.tile(var, boxes.size // 4)])[None]


PRIOR_CASES = [
    # (params, reference arguments, does OpenCV 4.14 implement it like SSD?)
    (
        "min_size: 30 max_size: 60 aspect_ratio: 2 flip: true clip: false "
        "variance: 0.1 variance: 0.1 variance: 0.2 variance: 0.2 offset: 0.5",
        dict(
            min_sizes=[30],
            max_sizes=[60],
            ratios=[2],
            flip=True,
            clip=False,
            variance=[0.1, 0.1, 0.2, 0.2],
        ),
        True,
    ),
    (
        "min_size: 20 aspect_ratio: 2 aspect_ratio: 3 aspect_ratio: 2 flip: true clip: true "
        "variance: 0.1",
        dict(min_sizes=[20], max_sizes=[], ratios=[2, 3], flip=True, clip=True, variance=[0.1]),
        True,
    ),
    (
        "min_size: 16 min_size: 32 max_size: 40 max_size: 64 step: 8 offset: 0.25 clip: false "
        "variance: 0.1 variance: 0.1 variance: 0.2 variance: 0.2",
        dict(
            min_sizes=[16, 32],
            max_sizes=[40, 64],
            ratios=[],
            flip=True,
            clip=False,
            variance=[0.1, 0.1, 0.2, 0.2],
            step_hw=(8, 8),
            offset=0.25,
        ),
        True,
    ),
    # SSD's clip defaults to false; OpenCV clips unless told not to.
    (
        "min_size: 16 aspect_ratio: 2 flip: false variance: 0.1",
        dict(min_sizes=[16], max_sizes=[], ratios=[2], flip=False, clip=False, variance=[0.1]),
        False,
    ),
    # SSD uses img_h/img_w when given; OpenCV takes the image size from bottom[1].
    (
        "min_size: 50 img_h: 120 img_w: 160 step_h: 12 step_w: 16 clip: true variance: 0.2",
        dict(
            min_sizes=[50],
            max_sizes=[],
            ratios=[],
            flip=True,
            clip=True,
            variance=[0.2],
            step_hw=(12, 16),
            image_hw=(120, 160),
        ),
        False,
    ),
]


@pytest.mark.parametrize(("params", "ref", "opencv_agrees"), PRIOR_CASES)
def test_prior_box(tmp_path, params, ref, opencv_agrees) -> None:  # type: ignore[no-untyped-def]
    shapes = {"feature": (1, 4, 10, 10), "data": (1, 3, 150, 160)}
    text = net_text(
        layer("PriorBox", f"prior_box_param {{ {params} }}", ("feature", "data")), shapes
    )
    feeds = {k: np.zeros(v, np.float32) for k, v in shapes.items()}
    out = run(tmp_path, text, feeds)
    ref = {"image_hw": (150, 160), **ref}
    close(out["y"], ssd_prior_box((10, 10), ref.pop("image_hw"), **ref), rel=1e-6)
    net = cv2.dnn.readNetFromCaffe(str(tmp_path / "net.prototxt"))
    for name, value in feeds.items():
        net.setInput(value, name)
    agrees = np.allclose(out["y"], net.forward("L"), atol=1e-6)
    assert agrees == opencv_agrees


def opencv_prior_box(feature_hw, image_hw, sizes, offsets, step_hw, clip, variance):  # type: ignore[no-untyped-def]
    """OpenCV's PriorBoxLayer::forward: per cell, per (width, height), per (x, y) offset."""
    (fh, fw), (ih, iw), (sh, sw) = feature_hw, image_hw, step_hw
    boxes = []
    for h in range(fh):
        for w in range(fw):
            for bw, bh in sizes:
                for oy, ox in offsets:
                    cx, cy = (w + ox) * sw, (h + oy) * sh
                    boxes += [(cx - bw / 2) / iw, (cy - bh / 2) / ih]
                    boxes += [(cx + bw / 2) / iw, (cy + bh / 2) / ih]
    corners = np.asarray(boxes)
    if clip:
        corners = corners.clip(0, 1)
    var = np.tile(variance if len(variance) == 4 else variance * 4, corners.size // 4)
    return np.stack([corners, var])[None]


OPENCV_PRIOR_CASES = [
    # Explicit box sizes (OpenCV's width/height), one offset.
    (
        "width: 20 height: 40 width: 30 height: 15 clip: false variance: 0.1",
        dict(sizes=[(20, 40), (30, 15)], offsets=[(0.5, 0.5)], step_hw=(15, 16), clip=False),
    ),
    # Several offsets per cell and explicit steps.
    (
        "width: 24 height: 24 offset_h: 0.25 offset_w: 0.25 offset_h: 0.75 offset_w: 0.5 "
        "step_h: 12 step_w: 20 clip: true variance: 0.1",
        dict(sizes=[(24, 24)], offsets=[(0.25, 0.25), (0.75, 0.5)], step_hw=(12, 20), clip=True),
    ),
    # Offsets with SSD's min_size/max_size/aspect_ratio sizes.
    (
        "min_size: 30 max_size: 60 aspect_ratio: 2 offset_h: 0 offset_w: 0 offset_h: 0.5 "
        "offset_w: 0.5 clip: false variance: 0.1",
        dict(
            sizes=[
                (30, 30),
                (math.sqrt(1800),) * 2,
                (30 * math.sqrt(2), 30 / math.sqrt(2)),
                (30 / math.sqrt(2), 30 * math.sqrt(2)),
            ],
            offsets=[(0, 0), (0.5, 0.5)],
            step_hw=(15, 16),
            clip=False,
        ),
    ),
]


@pytest.mark.parametrize(("params", "ref"), OPENCV_PRIOR_CASES)
def test_prior_box_opencv_extras(tmp_path, params, ref) -> None:  # type: ignore[no-untyped-def]
    """OpenCV's caffe.proto fields width/height (14-17 with offset_h/offset_w), vs OpenCV 4.14."""
    shapes = {"feature": (1, 4, 10, 10), "data": (1, 3, 150, 160)}
    text = net_text(
        layer("PriorBox", f"prior_box_param {{ {params} }}", ("feature", "data")), shapes
    )
    feeds = {k: np.zeros(v, np.float32) for k, v in shapes.items()}
    out = run(tmp_path, text, feeds)["y"]
    close(out, opencv_prior_box((10, 10), (150, 160), variance=[0.1], **ref), rel=1e-6)
    net = cv2.dnn.readNetFromCaffe(str(tmp_path / "net.prototxt"))
    for name, value in feeds.items():
        net.setInput(value, name)
    close(out, net.forward("L"), rel=1e-6)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("width: 20 height: 20 min_size: 10", "replace min_size"),
        ("width: 20 height: 20 width: 30", "2 width values for 1 height"),
        ("min_size: 10 offset: 0.5 offset_h: 0.2 offset_w: 0.2", "not both"),
        ("min_size: 10 offset_h: 0.2 offset_w: 0.2 offset_w: 0.4", "1 offset_h values for 2"),
        ("min_size: 10 step_h: 8", "both step_h and step_w"),
    ],
)
def test_prior_box_extras_refuse_what_opencv_refuses(tmp_path, params, message) -> None:  # type: ignore[no-untyped-def]
    shapes = {"feature": (1, 4, 10, 10), "data": (1, 3, 150, 160)}
    text = net_text(
        layer("PriorBox", f"prior_box_param {{ {params} }}", ("feature", "data")), shapes
    )
    with pytest.raises(ShapeError, match=message):
        run(tmp_path, text, {})


def caffe_roi_pool(x, rois, ph, pw, scale):  # type: ignore[no-untyped-def]
    """Caffe's ROIPoolingLayer::Forward_cpu."""
    _, c, h, w = x.shape
    y = np.zeros((len(rois), c, ph, pw))
    for n, roi in enumerate(rois):
        b = int(roi[0])
        x1, y1, x2, y2 = (math.floor(v * scale + 0.5) for v in roi[1:])
        rh, rw = max(y2 - y1 + 1, 1), max(x2 - x1 + 1, 1)
        bh, bw = rh / ph, rw / pw
        for i in range(ph):
            for j in range(pw):
                hs = min(max(math.floor(i * bh) + y1, 0), h)
                he = min(max(math.ceil((i + 1) * bh) + y1, 0), h)
                ws = min(max(math.floor(j * bw) + x1, 0), w)
                we = min(max(math.ceil((j + 1) * bw) + x1, 0), w)
                if he > hs and we > ws:
                    y[n, :, i, j] = x[b, :, hs:he, ws:we].max(axis=(1, 2))
    return y


def test_roi_pooling(tmp_path) -> None:  # type: ignore[no-untyped-def]
    x = rng(60).standard_normal((2, 3, 16, 20))
    rois = np.array(
        [[0, 4, 4, 40, 28], [1, 0, 0, 79, 63], [0, 30.2, 10.2, 50.2, 60.2], [1, 60, 50, 62, 52]]
    )
    params = "roi_pooling_param { pooled_h: 3 pooled_w: 4 spatial_scale: 0.25 }"
    text = net_text(layer("ROIPooling", params, ("x", "rois")), {"x": x.shape, "rois": rois.shape})
    out = run(tmp_path, text, {"x": x, "rois": rois})
    close(out["y"], caffe_roi_pool(x, rois, 3, 4, 0.25))


def test_layers_without_mapping_are_all_reported_with_the_plugin_recipe(tmp_path) -> None:  # type: ignore[no-untyped-def]
    text = net_text(
        layer("ReLU", "", ("x",), ("r",), name="relu")
        + layer(
            "PSROIPooling",
            "",
            ("r", "r", "r"),
            ("region",),
            name="region",
        )
        + layer("Python", 'python_param { module: "m" layer: "L" }', ("r",), ("py",), name="py")
        + layer("FancyNewLayer", "", ("r",), ("f",), name="fancy"),
        {"x": (1, 4, 2, 2)},
    )
    with pytest.raises(UnsupportedLayerError) as info:
        run(tmp_path, text, {})
    message = str(info.value)
    assert "3 layers that cannot be converted to ONNX" in message
    for name, kind, line in (
        ("region", "PSROIPooling", 4),
        ("py", "Python", 5),
        ("fancy", "FancyNewLayer", 6),
    ):
        assert f"layer '{name}' ({kind}, {tmp_path / 'net.prototxt'}:{line})" in message
    assert "Python: a Python layer runs arbitrary code" in message
    assert "@hookimpl" in message and "trtimport_register_caffe_layers" in message
    assert not (tmp_path / "net.onnx").exists()


def test_a_net_converts_up_to_a_layer_without_mapping(tmp_path) -> None:  # type: ignore[no-untyped-def]
    text = net_text(
        layer("ReLU", "", ("x",), ("r",), name="relu")
        + layer("PSROIPooling", "", ("r",), ("region",), name="region"),
        {"x": (1, 4, 2, 2)},
    )
    x = rng(61).standard_normal((1, 4, 2, 2))
    out = run(tmp_path, text, {"x": x}, outputs=["r"])
    close(out["r"], np.maximum(x, 0))


def test_roi_pooling_engine_build_explains_the_parser_limit(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import trtimport
    from trtimport.errors import ModelParseError
    from trtimport.importers.caffe.proto import caffe_pb2

    params = "roi_pooling_param { pooled_h: 2 pooled_w: 2 spatial_scale: 0.5 }"
    prototxt = tmp_path / "roi.prototxt"
    prototxt.write_text(
        net_text(layer("ROIPooling", params, ("x", "rois")), {"x": (1, 3, 8, 8), "rois": (2, 5)})
    )
    stored = caffe_pb2.NetParameter(name="roi")
    stored.layer.add(name="L", type="ROIPooling")
    weights = tmp_path / "roi.caffemodel"
    weights.write_bytes(stored.SerializeToString())
    with pytest.raises(ModelParseError, match=r"(?s)MaxRoiPool.*caffe_to_onnx"):
        trtimport.convert(
            prototxt,
            tmp_path / "roi.engine",
            import_options=trtimport.ImportOptions(weights=weights),
            build_options=trtimport.BuildOptions(progress=False),
        )
    assert not (tmp_path / "roi.engine").exists()
