"""Fork nets of DeepLab, TSN and the caffe-yolo forks. eric612/MobileNet-YOLO's YOLOv2 deploy
net (ReLU6, DepthwiseConvolution, YoloDetectionOutput; BSD-2) is in tests/data/caffe/forks/;
the others, whose prototxts cannot be committed (no licence, or too long to copy faithfully),
are excerpts in tests/data/caffe/forks/excerpts/ written for these tests with the same layer
types and fields: DeepLab v2 (ImageSegData, MatWrite, dilation, Interp), DeepLab v1 (the same
in the V1 format, with hole on Convolution), TSN (yjxiong's BN, RGB and flow inputs) and
choasup/caffe-yolo9000 (Reorg without reorg_param, RegionLoss, EvalDetection).
Seeded random weights from ``make_caffe_weights``; ONNX Runtime against the numpy forward
pass of each fork's C++ (``caffe_numpy.caffe_forward``: OpenCV 4.14 knows none of BN,
ImageSegData, DepthwiseConvolution or Reorg), max relative error <= 1e-4; each builds with
tensorrt_rtx.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from caffe_numpy import assert_matches_caffe_forward, caffe_forward, run_converted
from conftest import REPO

import trtimport
from trtimport.importers.caffe.convert import Conversion, caffe_to_onnx
from trtimport.importers.caffe.inputs import override_input_shapes
from trtimport.importers.caffe.make_weights import make_caffe_weights
from trtimport.importers.caffe.parse import CaffeModel, load_caffe

FORKS = REPO / "tests" / "data" / "caffe" / "forks"
TOLERANCE = 1e-4
#: case -> (prototxt under forks/, --input shapes, --output blobs or [] for the net's outputs,
#: layer where the numpy pass stops, or None).
CASES: dict[str, tuple[str, dict[str, tuple[int, ...]], list[str], str | None]] = {
    # The data layer's crop_size gives 1x3x65x65; zoom 8 of the 33x33 map gives 257x257.
    "DeepLab-v2": ("excerpts/DeepLab-v2-ASPP", {}, [], None),
    # The legacy V1 format: IMAGE_SEG_DATA, hole on CONVOLUTION, INTERP, MAT_WRITE.
    "DeepLab-v1": ("excerpts/DeepLab-v1-LargeFOV", {}, [], None),
    "TSN-RGB": ("excerpts/TSN-BN-Inception", {}, [], None),
    # The flow nets differ from the RGB ones in their input only: 10 channels (5 x, 5 y).
    # The train/val net at the TEST phase: VideoData becomes the input, 3 segments x 3
    # channels (its mean values), reshaped into the batch; the loss and accuracy are dropped.
    "TSN-train_val": ("excerpts/TSN-BN-Inception-train_val", {}, [], None),
    "TSN-flow": ("excerpts/TSN-BN-Inception", {"data": (1, 10, 64, 64)}, [], None),
    # The real net, 320x320 by default (a 10x10 grid): at 96x96, a 3x3 grid, whole, its
    # YoloDetectionOutput included (45 rows: 3 x 3 cells x 5 anchors).
    "MobileNet-YOLOv2": ("MobileNet-YOLOv2-lite", {"data": (1, 3, 96, 96)}, [], None),
    # The ports' Reorg (reorg_param stride 2) after a one-bottom Concat, and the same head.
    "YOLOv2-ports": ("excerpts/YOLOv2-ports", {}, [], None),
    # AnnotatedData's resize_param gives 64x64 but no channel count: --input gives it.
    "YOLOv2-yolo9000": ("excerpts/YOLOv2-yolo9000", {"data": (1, 3, 64, 64)}, [], None),
}


def _seeded(case: str, tmp_path: Path) -> CaffeModel:
    """The case's net with make-weights' seeded weights, its inputs overridden."""
    name, inputs, _, _ = CASES[case]
    prototxt = FORKS / f"{name}.prototxt"
    weights = make_caffe_weights(prototxt, tmp_path / f"{case}.caffemodel", 0, inputs).path
    model = load_caffe(prototxt, weights)
    override_input_shapes(model, inputs)
    return model


def _convert(case: str, tmp_path: Path) -> tuple[CaffeModel, Conversion]:
    model = _seeded(case, tmp_path)
    return model, caffe_to_onnx(model, tmp_path / f"{case}.onnx", outputs=CASES[case][2])


@pytest.mark.parametrize("case", list(CASES))
def test_fork_excerpt_matches_numpy_caffe(case: str, tmp_path: Path) -> None:
    _, _, outputs, until = CASES[case]
    model = _seeded(case, tmp_path)
    _, feeds, ours = run_converted(model, tmp_path / f"{case}.onnx", outputs, 3)
    assert_matches_caffe_forward(case, model, feeds, ours, TOLERANCE, until=until)


def test_fork_data_and_scoring_layers_become_inputs_and_outputs(
    tmp_path: Path,
) -> None:
    model, conversion = _convert("DeepLab-v2", tmp_path)
    assert conversion.inputs == {"data": (1, 3, 65, 65)}
    assert conversion.outputs == {"fc8_interp": (1, 21, 257, 257)}
    notes = " ".join(model.notes)
    assert "fc8_mat (MatWrite)" in notes and "ImageSegData" in notes, notes
    model, conversion = _convert("YOLOv2-yolo9000", tmp_path)
    assert list(conversion.outputs) == ["layer31-conv"]
    notes = " ".join(model.notes)
    assert "det_loss (RegionLoss)" in notes and "eval_det (EvalDetection)" in notes, notes
    model, conversion = _convert("TSN-train_val", tmp_path)
    assert conversion.inputs == {"data": (1, 9, 64, 64)}
    assert conversion.outputs == {"pool_fusion": (1, 1, 1, 101)}
    assert "'data' (VideoData)" in " ".join(model.notes), model.notes


def test_yolo_detection_output_converts_with_detections(tmp_path: Path) -> None:
    """The real net's head on an input that gives detections: the rows of eric612's C++
    (numpy), in its order, then -1 rows; conv22 scaled up so that boxes pass 0.3. Relative
    1e-4: the box sizes go through exp, which magnifies the backbone's rounding."""
    model, conversion = _convert("MobileNet-YOLOv2", tmp_path)
    assert conversion.outputs == {"detection_out": (1, 1, 45, 7)}
    weight, bias = model.weights["conv22_indoor"]
    model.weights["conv22_indoor"] = [weight * 8.0, bias + 1.0]
    converted = caffe_to_onnx(model, tmp_path / "scaled.onnx")
    feeds = {"data": np.random.default_rng(5).uniform(-1, 1, (1, 3, 96, 96)).astype(np.float32)}
    session = ort.InferenceSession(str(converted.path), providers=["CPUExecutionProvider"])
    (ours,) = session.run(["detection_out"], feeds)
    theirs = caffe_forward(model, feeds)["detection_out"]
    detections = int((theirs[0, 0, :, 1] > 0).sum())
    print(f"MobileNet-YOLOv2 head: {detections} detections of 45 rows")
    assert detections >= 2
    np.testing.assert_array_equal(ours[..., :2], theirs[..., :2])
    np.testing.assert_allclose(ours, theirs, rtol=TOLERANCE, atol=TOLERANCE)


@pytest.mark.parametrize(
    "case", ["DeepLab-v2", "DeepLab-v1", "TSN-RGB", "MobileNet-YOLOv2", "YOLOv2-yolo9000"]
)
def test_fork_excerpt_builds_with_tensorrt(case: str, tmp_path: Path) -> None:
    _, conversion = _convert(case, tmp_path)
    result = trtimport.convert(
        conversion.path,
        tmp_path / f"{case}.engine",
        build_options=trtimport.BuildOptions(progress=False),
    )
    assert result.engine_bytes


def test_caffemodel_fields_of_these_forks_still_parse() -> None:
    """Binary layers as the forks write them: yjxiong's interp_param (301, our
    eval_detection_param: its varints read across, shrink_factor (4, a varint) meets the
    float threshold and is kept aside as an unknown field), choasup's reorg_param (303,
    unknown here) and eric612's yolo_detection_output_param (601)."""
    from trtimport.importers.caffe.proto import caffe_pb2
    from trtimport.onnxtools.protowire import LEN, encode_varint

    def field(number: int, payload: bytes) -> bytes:
        return encode_varint(number << 3 | LEN) + encode_varint(len(payload)) + payload

    # height 5, shrink_factor 2, pad_beg -1
    interp = b"\x08\x05" + b"\x20\x02" + b"\x28" + encode_varint((1 << 64) - 1)
    reorg = b"\x08\x02"  # stride 2
    yolo = caffe_pb2.YoloDetectionOutputParameter(num_classes=20, biases=[1.08, 1.19])
    base = caffe_pb2.LayerParameter(name="L", type="Interp").SerializeToString()
    blob = base + field(301, interp) + field(303, reorg) + field(601, yolo.SerializeToString())
    layer = caffe_pb2.LayerParameter.FromString(blob)
    assert layer.name == "L" and layer.eval_detection_param.side == 5
    assert layer.eval_detection_param.threshold == 0.5  # the default: field 4 set aside
    assert layer.yolo_detection_output_param.num_classes == 20
    assert list(layer.yolo_detection_output_param.biases) == pytest.approx([1.08, 1.19])
