"""--shapes ranges on Caffe inputs: one ONNX graph with symbolic dimensions where every layer's
ONNX is the same at each MIN/OPT/MAX (fully-convolutional nets), matched against OpenCV and a
numpy transcription of Caffe's pooling at many sizes; a refusal naming the layer otherwise."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from caffe_harness import layer, net_text, rng
from test_layers_pool import caffe_pool
from test_layers_shape import caffe_interp2

import trtimport
from trtimport import ImportOptions
from trtimport.core.options import ShapeRange
from trtimport.errors import ShapeError, UnsupportedLayerError
from trtimport.importers.caffe.convert import Conversion, caffe_to_onnx, check_caffe
from trtimport.importers.caffe.make_weights import make_caffe_weights
from trtimport.importers.caffe.parse import load_caffe
from trtimport.importers.caffe.ranges import range_points, varying_inputs

DATA = Path(__file__).resolve().parents[2] / "data" / "caffe"
MNIST = Path(__file__).resolve().parents[3] / "examples" / "mnist"

Shape = tuple[int, ...]


def _profile(name: str, lo: Shape, opt: Shape, hi: Shape) -> dict[str, ShapeRange]:
    return {name: ShapeRange(lo, opt, hi)}


def _relative(actual: np.ndarray, expected: np.ndarray) -> float:
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = max(float(np.abs(expected).max(initial=0.0)), 1.0)
    return float(np.abs(actual - expected.astype(np.float64)).max(initial=0.0)) / scale


def _convert(
    prototxt: Path,
    caffemodel: Path | None,
    dest: Path,
    profile: dict[str, ShapeRange],
    outputs: tuple[str, ...] = (),
) -> tuple[Conversion, ort.InferenceSession]:
    model = load_caffe(prototxt, caffemodel)
    conversion = caffe_to_onnx(model, dest, outputs=outputs, profiles=[profile])
    onnx.checker.check_model(str(dest), full_check=True)
    return conversion, ort.InferenceSession(str(dest), providers=["CPUExecutionProvider"])


def _trt_network(path: Path) -> tuple[Any, ...]:
    """(logger, builder, parser, network): TensorRT-RTX's ONNX parser's network of ``path``
    with what must outlive it."""
    import tensorrt_rtx as trt

    logger = trt.Logger(trt.Logger.ERROR)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    assert parser.parse_from_file(str(path)), [
        parser.get_error(i) for i in range(parser.num_errors)
    ]
    return logger, builder, parser, network


# --- Caffe's pooling size rule, at every size --------------------------------------------------


def caffe_pooled_size(
    size: int, kernel: int, stride: int, pad: int, ceil: bool, padded: bool
) -> int:
    """PoolingLayer::Reshape (BVLC master): float division rounded by round_mode, then the last
    window dropped when it starts at or beyond size + pad and either axis is padded."""
    span = float(size + 2 * pad - kernel) / stride
    pooled = int(math.ceil(span) if ceil else math.floor(span)) + 1
    if padded and (pooled - 1) * stride >= size + pad:
        pooled -= 1
    return pooled


#: (kernel, stride, pad) per axis H, W, and the rounding; what each exercises.
GEOMETRIES = [
    (((2, 2), (2, 2), (0, 0)), True),  # OpenPose/PNet: ceil adds a window on odd sizes
    (((3, 3), (2, 2), (1, 1)), True),  # AVE divisor differs from both ONNX modes (ratio map)
    (((3, 3), (2, 2), (0, 0)), True),  # GoogLeNet-style overhang, AVE = in-image count
    (((2, 2), (2, 2), (1, 1)), True),  # the clip: a window starting in the pad is dropped
    (((3, 3), (1, 1), (1, 1)), True),  # stride 1: no overhang, AVE counts the pad (cip=1)
    (((2, 3), (3, 3), (0, 1)), True),  # stride above kernel on H, clipped since W is padded
    (((3, 3), (2, 2), (1, 1)), False),  # round_mode: FLOOR
]


@pytest.mark.parametrize("method", ["MAX", "AVE"])
@pytest.mark.parametrize(("geometry", "ceil"), GEOMETRIES, ids=str)
def test_pooling_matches_caffe_at_every_size(tmp_path, method, geometry, ceil) -> None:  # type: ignore[no-untyped-def]
    """One ONNX graph for sizes 3..29 x 4..30; the output shape by ONNX Runtime and by
    TensorRT-RTX's shape inference equals Caffe's size rule, and ONNX Runtime's values Caffe's
    pooling loops, at each of them."""
    k, s, p = geometry
    params = (
        f"pooling_param {{ pool: {method} kernel_h: {k[0]} kernel_w: {k[1]} stride_h: {s[0]} "
        f"stride_w: {s[1]} pad_h: {p[0]} pad_w: {p[1]} round_mode: {'CEIL' if ceil else 'FLOOR'} }}"
    )
    prototxt = tmp_path / "pool.prototxt"
    prototxt.write_text(net_text(layer("Pooling", params), {"x": (1, 2, 8, 8)}))
    lo, hi = (1, 2, 3, 4), (1, 2, 29, 30)
    conversion, session = _convert(
        prototxt, None, tmp_path / "pool.onnx", _profile("x", lo, (1, 2, 8, 9), hi)
    )
    assert conversion.symbolic["x"] == [1, 2, "x_height", "x_width"]
    *_owners, network = _trt_network(tmp_path / "pool.onnx")  # owners outlive the network
    for h in range(3, 30):
        w = h + 1
        x = rng(h).standard_normal((1, 2, h, w)).astype(np.float32)
        (y,) = session.run(["y"], {"x": x})
        padded = any(p)
        expected_hw = [
            caffe_pooled_size(size, k[i], s[i], p[i], ceil, padded) for i, size in enumerate((h, w))
        ]
        assert list(y.shape[2:]) == expected_hw, (h, w)
        network.get_input(0).shape = (1, 2, h, w)  # TensorRT's shape inference at this size
        assert list(network.get_output(0).shape) == [1, 2, *expected_hw], (h, w)
        assert _relative(y, caffe_pool(x, k, s, p, method, ceil=ceil)) <= 1e-5, (h, w)


def test_unclipped_stride_above_kernel_is_refused_for_ranges(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Without padding Caffe keeps a window wholly outside the input at some sizes."""
    prototxt = tmp_path / "pool.prototxt"
    params = "pooling_param { pool: MAX kernel_size: 1 stride: 2 }"
    prototxt.write_text(net_text(layer("Pooling", params, name="skip"), {"x": (1, 2, 8, 8)}))
    profile = _profile("x", (1, 2, 8, 8), (1, 2, 8, 8), (1, 2, 16, 16))
    with pytest.raises(UnsupportedLayerError, match=r"'skip'.*wholly outside the input at some"):
        check_caffe(load_caffe(prototxt, None), profiles=[profile])


# --- a real fully-convolutional net with real weights: MTCNN's PNet ---------------------------


def test_pnet_one_engine_for_a_range_of_image_sizes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """MTCNN runs PNet (12x12 in its prototxt) at every scale of an image pyramid. One ONNX
    graph matches OpenCV, which reshapes the Caffe net to each input, at odd and even sizes
    (its 2x2 ceil pooling adds a window on odd sizes); TensorRT builds it with the profile."""
    prototxt, weights = DATA / "MTCNN-PNet.prototxt", DATA / "weights" / "MTCNN-PNet.caffemodel"
    profile = _profile("data", (1, 3, 12, 12), (1, 3, 47, 61), (1, 3, 99, 120))
    conversion, session = _convert(prototxt, weights, tmp_path / "pnet.onnx", profile)
    assert conversion.symbolic["data"] == [1, 3, "data_height", "data_width"]
    assert conversion.symbolic["prob1"] == [1, 2, "prob1_height", "prob1_width"]
    reference = cv2.dnn.readNetFromCaffe(str(prototxt), str(weights))
    names = list(conversion.outputs)
    for h, w in [(12, 12), (13, 17), (24, 25), (33, 47), (47, 61), (64, 64), (99, 120)]:
        x = rng(h * w).uniform(-1.0, 1.0, (1, 3, h, w)).astype(np.float32)
        reference.setInput(x)
        for got, want in zip(
            session.run(names, {"data": x}), reference.forward(names), strict=True
        ):
            assert _relative(got, want) <= 1e-4, (h, w)

    result = trtimport.convert(
        prototxt,
        tmp_path / "pnet.engine",
        import_options=ImportOptions(weights=weights, profiles=[profile]),
        build_options=trtimport.BuildOptions(progress=False),
    )
    assert (tmp_path / "pnet.engine").stat().st_size > 0
    assert [(t.name, tuple(t.shape)) for t in result.inputs] == [("data", (1, 3, -1, -1))]
    sidecar = json.loads((tmp_path / "pnet.engine.json").read_text())
    assert sidecar["profiles"] == [{"data": profile["data"].as_dict()}]


def test_squeezenet_range_matches_opencv(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """SqueezeNet 1.1 ends in global pooling, so a classifier takes a range of image sizes; its
    3x3/2 ceil pooling overhangs at even sizes. Seeded random weights."""
    prototxt = DATA / "SqueezeNet1.1.prototxt"
    weights = make_caffe_weights(prototxt, tmp_path / "squeezenet.caffemodel", seed=2).path
    profile = _profile("data", (1, 3, 96, 96), (1, 3, 227, 227), (1, 3, 260, 250))
    outputs = ("pool10", "prob")  # the logits too: random nets' probabilities are all small
    conversion, session = _convert(
        prototxt, weights, tmp_path / "squeezenet.onnx", profile, outputs
    )
    assert conversion.symbolic["data"] == [1, 3, "data_height", "data_width"]
    assert "prob" not in conversion.symbolic  # 1 x 1000 x 1 x 1 at every size
    reference = cv2.dnn.readNetFromCaffe(str(prototxt), str(weights))
    for h, w in [(96, 96), (131, 170), (227, 227), (260, 250)]:
        x = rng(h).uniform(-1.0, 1.0, (1, 3, h, w)).astype(np.float32)
        reference.setInput(x)
        wanted = reference.forward(list(outputs))
        for got, want in zip(session.run(list(outputs), {"data": x}), wanted, strict=True):
            assert _relative(got, want) <= 1e-4, (h, w)


# --- Crop, Interp, Deconvolution, Flatten and Reshape whose sizes come from blobs -------------


def _fcn_text() -> str:
    conv = "convolution_param {{ num_output: {n} kernel_size: {k} pad: {p} }}"
    layers = [
        layer("Convolution", conv.format(n=6, k=3, p=1), ("x",), ("c1",), "conv1"),
        layer("ReLU", "", ("c1",), ("c1",), "relu1"),
        layer(
            "Pooling",
            "pooling_param { pool: MAX kernel_size: 3 stride: 2 pad: 1 }",
            ("c1",),
            ("p1",),
            "pool1",
        ),
        layer("Convolution", conv.format(n=6, k=3, p=1), ("p1",), ("c2",), "conv2"),
        layer("BatchNorm", "", ("c2",), ("c2",), "bn2"),
        layer("Scale", "scale_param { bias_term: true }", ("c2",), ("c2",), "scale2"),
        layer("PReLU", "", ("c2",), ("c2",), "prelu2"),
        layer(
            "Pooling",
            "pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 }",
            ("c2",),
            ("p2",),
            "pool2",
        ),
        layer(
            "Deconvolution",
            "convolution_param { num_output: 6 kernel_size: 4 stride: 2 }",
            ("p2",),
            ("up",),
            "up2",
        ),
        layer("Crop", "crop_param { axis: 2 offset: 1 }", ("up", "c2"), ("crop",), "crop"),
        layer("Eltwise", "", ("crop", "c2"), ("fused",), "fuse"),
        layer("Interp", "interp_param { zoom_factor: 2 }", ("fused",), ("zoom",), "zoom"),
        layer("Concat", "", ("fused", "crop"), ("cat",), "cat"),
        layer("Softmax", "", ("cat",), ("prob",), "prob"),
        layer("Flatten", "flatten_param { axis: 1 end_axis: 2 }", ("zoom",), ("rows",), "rows"),
        layer(
            "Reshape",
            "reshape_param { shape { dim: 3 dim: -1 } axis: 1 num_axes: 1 }",
            ("zoom",),
            ("groups",),
            "groups",
        ),
        layer(
            "Reshape",
            "reshape_param { shape { dim: 0 dim: 0 dim: -1 } }",
            ("p2",),
            ("flat",),
            "flat",
        ),
    ]
    return net_text("".join(layers), {"x": (1, 3, 1, 1)})


def test_fcn_layers_follow_the_input_size(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A prototxt declaring 1x3x1x1, as OpenPose's does, converted for 9x11 to 33x40: the
    layers that take sizes from blobs read them in the graph; OpenCV agrees at each size."""
    prototxt = tmp_path / "fcn.prototxt"
    prototxt.write_text(_fcn_text())
    weights = make_caffe_weights(prototxt, tmp_path / "fcn.caffemodel", seed=3).path
    profile = _profile("x", (1, 3, 9, 11), (1, 3, 16, 20), (1, 3, 33, 40))
    conversion, session = _convert(prototxt, weights, tmp_path / "fcn.onnx", profile)
    assert conversion.symbolic["rows"] == [1, "rows_dim1", "rows_dim2"]
    reference = cv2.dnn.readNetFromCaffe(str(prototxt), str(weights))
    names = ["prob", "rows", "groups", "flat"]
    for h, w in [(9, 11), (10, 13), (16, 20), (21, 22), (33, 40)]:
        x = rng(h + w).standard_normal((1, 3, h, w)).astype(np.float32)
        reference.setInput(x)
        wanted = reference.forward(names)
        for name, got, want in zip(names, session.run(names, {"x": x}), wanted, strict=True):
            assert _relative(got, want.reshape(got.shape)) <= 1e-4, (name, h, w)
    result = trtimport.convert(
        prototxt,
        tmp_path / "fcn.engine",
        import_options=ImportOptions(weights=weights, profiles=[profile]),
        build_options=trtimport.BuildOptions(progress=False),
    )
    assert [tuple(t.shape) for t in result.outputs] == [
        (1, 12, -1, -1),
        (1, -1, -1),
        (1, 3, 2, -1, -1),
        (1, 6, -1),
    ]
    assert "input 'x' takes [1, 3, x_height, x_width] (its --shapes range)" in result.notes[-1]


def test_interp_and_upsample_sizes_from_blobs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Interp to a second bottom's size and after cropping with shrink_factor, and Upsample by
    a scale, against numpy transcriptions of Caffe's at several sizes of one graph."""
    layers = (
        layer("Interp", "", ("x", "r"), ("to_r",), "to_r")
        + layer(
            "Interp",
            "interp_param { shrink_factor: 2 pad_beg: -1 pad_end: -2 }",
            ("x",),
            ("shrunk",),
            "shrunk",
        )
        + layer("Upsample", "upsample_param { scale: 2 }", ("x",), ("twice",), "twice")
    )
    prototxt = tmp_path / "resize.prototxt"
    prototxt.write_text(net_text(layers, {"x": (1, 2, 7, 8), "r": (1, 1, 5, 5)}))
    profile = {
        "x": ShapeRange((1, 2, 6, 6), (1, 2, 9, 12), (1, 2, 20, 21)),
        "r": ShapeRange((1, 1, 3, 3), (1, 1, 11, 5), (1, 1, 30, 30)),
    }
    _, session = _convert(prototxt, None, tmp_path / "resize.onnx", profile)
    for (h, w), (rh, rw) in [
        ((6, 6), (3, 3)),
        ((9, 12), (11, 5)),
        ((13, 7), (30, 4)),
        ((20, 21), (8, 29)),
    ]:
        x = rng(h * w).standard_normal((1, 2, h, w)).astype(np.float32)
        r = np.zeros((1, 1, rh, rw), np.float32)
        to_r, shrunk, twice = session.run(["to_r", "shrunk", "twice"], {"x": x, "r": r})
        assert _relative(to_r, caffe_interp2(x, rh, rw)) <= 1e-5
        cropped = x[:, :, 1 : h - 2, 1 : w - 2]
        size = [(s - 1) // 2 + 1 for s in cropped.shape[2:]]
        assert _relative(shrunk, caffe_interp2(cropped, *size)) <= 1e-5
        assert _relative(twice, x.repeat(2, axis=2).repeat(2, axis=3)) == 0.0


# --- refusals: layers whose ONNX needs the size -----------------------------------------------


def test_lenet_range_names_the_inner_product(tmp_path: Path) -> None:
    """LeNet's ip1 reads 800 values at 28x28 only: converting at MIN fails there."""
    with pytest.raises(ShapeError) as info:
        trtimport.convert(
            MNIST / "lenet.caffemodel",
            tmp_path / "lenet.engine",
            import_options=ImportOptions(
                profiles=[_profile("data", (1, 1, 20, 20), (1, 1, 28, 28), (1, 1, 28, 28))]
            ),
            build=False,
        )
    message = str(info.value)
    assert "input 'data' the sizes 1x1x20x20 to 1x1x28x28" in message
    assert "does not convert at MIN" in message
    assert "layer 'ip1' (InnerProduct" in message and "--input data:SHAPE" in message
    assert not (tmp_path / "lenet.engine").exists()


def test_ssd_range_names_the_prior_box() -> None:
    """MobileNet-SSD converts at 300x300 and at 320x320, but its PriorBox constants differ."""
    model = load_caffe(DATA / "MobileNet-SSD.prototxt", None)
    profile = _profile("data", (1, 3, 300, 300), (1, 3, 300, 300), (1, 3, 320, 320))
    with pytest.raises(ShapeError, match=r"layer '\w+' \(PriorBox, .*is converted differently"):
        check_caffe(model, profiles=[profile])


# --- which shapes are converted, and which dimensions become symbols --------------------------


def test_points_and_batch_ranges(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A batch-only range makes the batch a symbol; every distinct MIN/OPT/MAX of every profile
    is converted, the first profile's OPT first."""
    inputs = {"data": (1, 3, 8, 8), "im_info": (1, 3)}
    batch = _profile("data", (1, 3, 8, 8), (2, 3, 8, 8), (4, 3, 8, 8))
    spatial = _profile("data", (1, 3, 8, 8), (1, 3, 9, 9), (1, 3, 16, 16))
    assert varying_inputs([batch, spatial], inputs) == {"data": batch}
    points = range_points([batch, spatial], inputs)
    assert [p.label for p in points] == [
        "OPT of profile 1",
        "MIN of profile 1",
        "MAX of profile 1",
        "OPT of profile 2",
        "MAX of profile 2",
    ]
    assert points[0].shapes == {"data": (2, 3, 8, 8), "im_info": (1, 3)}

    prototxt = tmp_path / "bn.prototxt"
    conv = "convolution_param { num_output: 2 kernel_size: 3 }"
    prototxt.write_text(net_text(layer("Convolution", conv), {"x": (1, 3, 8, 8)}))
    weights = make_caffe_weights(prototxt, tmp_path / "bn.caffemodel", seed=1).path
    profile = _profile("x", (1, 3, 8, 8), (2, 3, 8, 8), (4, 3, 8, 8))
    conversion, session = _convert(prototxt, weights, tmp_path / "bn.onnx", profile)
    assert conversion.symbolic == {"x": ["x_batch", 3, 8, 8], "y": ["y_batch", 2, 6, 6]}
    assert session.run(["y"], {"x": np.ones((3, 3, 8, 8), np.float32)})[0].shape == (3, 2, 6, 6)


def test_a_range_of_another_rank_is_a_shape_error() -> None:
    model = load_caffe(MNIST / "lenet.prototxt", None)
    profile = _profile("data", (1, 28, 28), (1, 28, 28), (1, 30, 30))
    with pytest.raises(ShapeError, match=r"'data' has rank 4 \[1, 1, 28, 28\]; --shapes gives"):
        check_caffe(model, profiles=[profile])


def test_a_single_other_shape_is_converted_at_that_shape(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """--shapes data:1x3x50x50 (MIN = OPT = MAX) on PNet's 12x12 prototxt acts as --input."""
    prototxt, weights = DATA / "MTCNN-PNet.prototxt", DATA / "weights" / "MTCNN-PNet.caffemodel"
    shape = (1, 3, 50, 50)
    conversion, _ = _convert(prototxt, weights, tmp_path / "p.onnx", _profile("data", *[shape] * 3))
    assert conversion.inputs == {"data": shape} and conversion.symbolic == {}
    assert conversion.outputs["prob1"] == (1, 2, 20, 20)
