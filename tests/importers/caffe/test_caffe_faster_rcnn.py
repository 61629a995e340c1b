"""py-faster-rcnn's Python layers: train.prototxt converts to test.prototxt's graph.

The prototxts are rbgirshick/py-faster-rcnn's ZF faster_rcnn_end2end pair, unmodified. Weights
are seeded random ones made by ``make-weights`` from test.prototxt and used for both nets.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from trtimport.errors import TrtImportError, UnsupportedLayerError
from trtimport.importers.caffe.convert import caffe_to_onnx, check_caffe
from trtimport.importers.caffe.inputs import override_input_shapes
from trtimport.importers.caffe.make_weights import make_caffe_weights
from trtimport.importers.caffe.parse import load_caffe
from trtimport.importers.caffe.pyfasterrcnn import ParamStrError, parse_param_str

REPO = Path(__file__).resolve().parents[3]
TRAIN_VAL = REPO / "tests" / "data" / "caffe" / "train_val"
ZF_TRAIN = TRAIN_VAL / "py-faster-rcnn-ZF-train.prototxt"
ZF_TEST = TRAIN_VAL / "py-faster-rcnn-ZF-test.prototxt"
#: faster_rcnn_alt_opt's Fast R-CNN training stage, and the Fast R-CNN test net it matches.
ZF_STAGE1_FAST_RCNN = TRAIN_VAL / "py-faster-rcnn-ZF-stage1_fast_rcnn_train.pt"
ZF_FAST_RCNN_TEST = TRAIN_VAL / "py-faster-rcnn-ZF-fast_rcnn-test.prototxt"
ZF_STAGE1_RPN = TRAIN_VAL / "py-faster-rcnn-ZF-stage1_rpn_train.pt"
#: test.prototxt's own input size.
SIZE = (1, 3, 224, 224)
#: The input's spread: with the seeded weights, the RPN then proposes about a hundred regions.
SCALE = 0.2


@pytest.fixture(scope="module")
def zf_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Seeded random weights for ZF (226 MiB), made from test.prototxt."""
    dest = tmp_path_factory.mktemp("zf") / "zf.caffemodel"
    make_caffe_weights(ZF_TEST, dest, seed=0)
    return dest


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("'feat_stride': 16", {"feat_stride": 16}),
        ('"num_classes": 21', {"num_classes": 21}),
        (
            "'feat_stride': 16\n'scales':\n - 8 \n - 16 \n - 32",
            {"feat_stride": 16, "scales": [8, 16, 32]},
        ),
        (
            "{'feat_stride': 8, 'scales': [4, 8], 'ratios': [0.5, 1.0]}",
            {"feat_stride": 8, "scales": [4, 8], "ratios": [0.5, 1.0]},
        ),
        ("feat_stride: 16\nname: 'rpn'", {"feat_stride": 16, "name": "rpn"}),
        ("", {}),
    ],
)
def test_param_str_is_read_as_the_yaml_py_faster_rcnn_writes(text: str, expected: dict) -> None:  # type: ignore[type-arg]
    assert parse_param_str(text) == expected


@pytest.mark.parametrize(
    "text", ["{'a': 1", "'a' 1", "- 3", "'a': [1, 2", "'a': !!python/object x"]
)
def test_param_str_outside_the_subset_is_refused(text: str) -> None:
    with pytest.raises(ParamStrError):
        parse_param_str(text)


def test_train_prototxt_loads_as_the_test_net_with_every_step_said() -> None:
    train = load_caffe(ZF_TRAIN, None)
    test = load_caffe(ZF_TEST, None)
    assert train.input_shapes == {"data": (1, 3, 600, 1000), "im_info": (1, 3)}
    wiring = [(x.name, x.type, list(x.bottom), list(x.top)) for x in test.net.layer]
    assert wiring[-1] == ("cls_prob", "Softmax", ["cls_score"], ["cls_prob"])  # test only
    assert [(x.name, x.type, list(x.bottom), list(x.top)) for x in train.net.layer] == [
        ("input-data", "Input", [], ["data", "im_info"]),
        *wiring[:-1],
    ]
    notes = "\n".join(train.notes)
    for said in (
        "the layer 'proposal' (Python rpn.proposal_layer.ProposalLayer) converts as the built-in "
        "Proposal layer: feat_stride 16, anchor scales 8, 16, 32, ratios 0.5, 1, 2, and "
        "py-faster-rcnn's TEST settings (pre_nms_topn 6000, post_nms_topn 300",
        "dropped the training-only layer 'rpn-data' (Python "
        "rpn.anchor_target_layer.AnchorTargetLayer)",
        "dropped the training-only layer 'roi-data' (Python "
        "rpn.proposal_target_layer.ProposalTargetLayer)",
        "'rois' is now the proposals of 'proposal' (its top 'rpn_rois' renamed 'rois'",
        "dropped 4 loss/accuracy layer(s): rpn_loss_cls (SoftmaxWithLoss), rpn_loss_bbox "
        "(SmoothL1Loss), loss_cls (SoftmaxWithLoss), loss_bbox (SmoothL1Loss); the net's "
        "outputs include what they read: cls_score, bbox_pred",
        "the data layer 'input-data' (Python) became the input(s) 'data' 1x3x600x1000, "
        "'im_info' 1x3",
        "gt_boxes: read by nothing, left out",
        "--input data:1x3xHxW",
    ):
        assert said in notes
    assert "converts as the built-in Proposal layer" in "\n".join(test.notes)


def _graph(path: Path) -> tuple[list[bytes], ...]:
    """Nodes, inputs, outputs and initializers (external ones without their link's name)."""
    graph = onnx.load(str(path), load_external_data=False).graph
    inits = []
    for tensor in graph.initializer:
        copy = onnx.TensorProto.FromString(tensor.SerializeToString())
        entries = [e for e in copy.external_data if e.key != "location"]
        del copy.external_data[:]
        copy.external_data.extend(entries)
        inits.append(copy.SerializeToString())
    parts = [[x.SerializeToString() for x in xs] for xs in (graph.node, graph.input, graph.output)]
    return (*parts, inits)


def test_train_prototxt_converts_to_the_test_graph(zf_weights: Path) -> None:
    """Same nodes, inputs and initializers; train's outputs: cls_score (no Softmax), bbox_pred."""
    tmp_path = zf_weights.parent  # ONNX Runtime reads linked weights from the model's folder
    test = load_caffe(ZF_TEST, zf_weights)
    cut = caffe_to_onnx(
        test, tmp_path / "test_cut.onnx", outputs=["cls_score", "bbox_pred"], link_weights=True
    )
    full = caffe_to_onnx(test, tmp_path / "test.onnx", link_weights=True)
    train = load_caffe(ZF_TRAIN, zf_weights)
    override_input_shapes(train, {"data": SIZE})
    converted = caffe_to_onnx(train, tmp_path / "train.onnx", link_weights=True)
    assert converted.inputs == cut.inputs == {"data": SIZE, "im_info": (1, 3)}
    assert converted.outputs == cut.outputs == {"cls_score": (300, 21), "bbox_pred": (300, 84)}
    assert full.outputs == {"bbox_pred": (300, 84), "cls_prob": (300, 21)}
    assert _graph(tmp_path / "train.onnx") == _graph(tmp_path / "test_cut.onnx")
    for name in ("train.onnx", "test_cut.onnx"):  # both link the one caffemodel
        assert (tmp_path / f"{name}.weights0.caffemodel").resolve() == zf_weights.resolve()

    rng = np.random.default_rng(0)
    feeds = {
        "data": (rng.standard_normal(SIZE) * SCALE).astype(np.float32),
        "im_info": np.array([[224, 224, 1.0]], np.float32),
    }
    cpu = ["CPUExecutionProvider"]
    cls_score, bbox_pred = ort.InferenceSession(str(tmp_path / "train.onnx"), providers=cpu).run(
        ["cls_score", "bbox_pred"], feeds
    )
    test_bbox, cls_prob = ort.InferenceSession(str(tmp_path / "test.onnx"), providers=cpu).run(
        ["bbox_pred", "cls_prob"], feeds
    )
    np.testing.assert_array_equal(bbox_pred, test_bbox)
    shifted = np.exp(cls_score - cls_score.max(axis=1, keepdims=True))
    np.testing.assert_allclose(shifted / shifted.sum(axis=1, keepdims=True), cls_prob, atol=1e-6)

    rois_of = {}
    for model, stem in ((train, "train"), (test, "test")):
        caffe_to_onnx(model, tmp_path / f"{stem}_rois.onnx", outputs=["rois"], link_weights=True)
        session = ort.InferenceSession(str(tmp_path / f"{stem}_rois.onnx"), providers=cpu)
        (rois_of[stem],) = session.run(["rois"], feeds)
    np.testing.assert_array_equal(rois_of["train"], rois_of["test"])
    assert 50 < int((rois_of["train"][:, 3] > 0).sum()) <= 300  # real proposals, not padding


def test_an_alt_opt_fast_rcnn_stage_converts_to_the_fast_rcnn_test_graph(zf_weights: Path) -> None:
    """RoIDataLayer without an RPN gives data and rois; the silenced RPN dummies are dropped."""
    tmp_path = zf_weights.parent
    regions = {"data": SIZE, "rois": (4, 5)}
    test = load_caffe(ZF_FAST_RCNN_TEST, zf_weights)
    override_input_shapes(test, regions)
    cut = caffe_to_onnx(
        test, tmp_path / "frcnn_test.onnx", outputs=["cls_score", "bbox_pred"], link_weights=True
    )
    stage = load_caffe(ZF_STAGE1_FAST_RCNN, zf_weights)
    assert stage.input_shapes == {"data": (1, 3, 600, 1000), "rois": (1, 5)}
    override_input_shapes(stage, regions)
    converted = caffe_to_onnx(stage, tmp_path / "stage1.onnx", link_weights=True)
    assert converted.outputs == cut.outputs == {"cls_score": (4, 21), "bbox_pred": (4, 84)}
    assert _graph(tmp_path / "stage1.onnx") == _graph(tmp_path / "frcnn_test.onnx")
    notes = "\n".join(stage.notes)
    assert (
        "dropped 6 layer(s) that only Silence layers read, and the Silence layers: rpn_conv1, "
        "rpn_relu1, rpn_cls_score, rpn_bbox_pred, silence_rpn_cls_score, silence_rpn_bbox_pred"
    ) in notes
    assert "the net's outputs include what they read: cls_score, bbox_pred\n" in notes
    assert (
        "labels, bbox_targets, bbox_inside_weights, bbox_outside_weights: read by nothing" in notes
    )
    assert "--input rois:Rx5" in notes

    rng = np.random.default_rng(1)
    corners = rng.uniform(0, 200, (4, 2)).astype(np.float32)
    feeds = {
        "data": (rng.standard_normal(SIZE) * SCALE).astype(np.float32),
        "rois": np.concatenate([np.zeros((4, 1), np.float32), corners, corners + 20], axis=1),
    }
    cpu = ["CPUExecutionProvider"]
    names = ["cls_score", "bbox_pred"]
    ours = ort.InferenceSession(str(tmp_path / "stage1.onnx"), providers=cpu).run(names, feeds)
    theirs = ort.InferenceSession(str(tmp_path / "frcnn_test.onnx"), providers=cpu).run(
        names, feeds
    )
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(a, b)
    assert float(np.abs(ours[1]).max()) > 0


def test_an_alt_opt_rpn_stage_keeps_the_rpn_and_drops_its_silenced_dummies() -> None:
    """DummyData -> fc6 -> fc7 -> Silence is dead at test time; im_info only fed the targets."""
    stage = load_caffe(ZF_STAGE1_RPN, None)
    assert stage.input_shapes == {"data": (1, 3, 600, 1000)}
    assert check_caffe(stage) == {
        "rpn_bbox_pred": (1, 36, 39, 64),
        "rpn_cls_score_reshape": (1, 2, 351, 64),
    }
    notes = "\n".join(stage.notes)
    for said in (
        "dropped 4 layer(s) that only Silence layers read, and the Silence layers: fc6, relu6, "
        "fc7, silence_fc7",
        "im_info, gt_boxes: read by nothing, left out",
        "dropped the data layer 'dummy_roi_pool_conv5' (nothing reads it)",
        "the net's outputs include what they read: rpn_cls_score_reshape, rpn_bbox_pred",
    ):
        assert said in notes


def test_the_engine_build_says_why_roi_pooling_stops_it(
    cli, zf_weights: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """The intermediate ONNX links the caffemodel; TensorRT's refusal is explained, not a crash."""
    result = cli(
        str(ZF_TRAIN), "--weights", str(zf_weights), "--input", "data:1x3x224x224", "--no-engine"
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "roi_pool_conv5, MaxRoiPool" in result.stderr
    assert "Get the ONNX file alone with the Python API caffe_to_onnx" in result.stderr


NET = """input: "scores" input_shape { dim: 1 dim: 18 dim: 4 dim: 5 }
input: "deltas" input_shape { dim: 1 dim: 36 dim: 4 dim: 5 }
input: "im_info" input_shape { dim: 1 dim: 3 }
layer { name: "proposal" type: "Python" bottom: "scores" bottom: "deltas" bottom: "im_info"
  top: "rois" top: "scores_out"
  python_param { module: "rpn.proposal_layer" layer: "ProposalLayer" param_str: "PARAM" } }
"""


def test_a_python_proposal_layer_is_the_built_in_proposal(tmp_path: Path) -> None:
    (tmp_path / "python").mkdir()
    (tmp_path / "builtin").mkdir()
    python = tmp_path / "python" / "net.prototxt"
    python.write_text(NET.replace("PARAM", "{'feat_stride': 8, 'scales': [2, 4, 8]}"))
    builtin = tmp_path / "builtin" / "net.prototxt"
    builtin.write_text(
        NET.split("layer {")[0]
        + 'layer { name: "proposal" type: "Proposal" bottom: "scores" bottom: "deltas" '
        'bottom: "im_info" top: "rois" top: "scores_out"\n'
        "  proposal_param { feat_stride: 8 scale: 2 scale: 4 scale: 8 } }\n"
    )
    a = caffe_to_onnx(load_caffe(python, None), tmp_path / "a.onnx")
    b = caffe_to_onnx(load_caffe(builtin, None), tmp_path / "b.onnx")
    assert a.outputs == b.outputs == {"rois": (180, 5), "scores_out": (180, 1)}
    assert onnx.load(str(tmp_path / "a.onnx")).graph == onnx.load(str(tmp_path / "b.onnx")).graph


@pytest.mark.parametrize(
    ("param", "reason"),
    [
        ("'feat_stride': 16\\n'pre_nms_topn': 100", "param_str key(s) 'pre_nms_topn' are not read"),
        ("'scales': [8]", "has no 'feat_stride'"),
        ("'feat_stride': 16.5", "'feat_stride' must be a whole number"),
        ("'feat_stride': [16", "its param_str cannot be read"),
    ],
)
def test_a_proposal_param_str_it_cannot_map_is_reported_with_the_layer(
    tmp_path: Path, param: str, reason: str
) -> None:
    prototxt = tmp_path / "bad.prototxt"
    prototxt.write_text(NET.replace("PARAM", param))
    with pytest.raises(UnsupportedLayerError) as err:
        check_caffe(load_caffe(prototxt, None))
    message = str(err.value)
    assert f"layer 'proposal' (Python, {prototxt}:4)" in message
    assert "rpn.proposal_layer.ProposalLayer" in message and reason in message


def test_an_unknown_python_layer_of_a_train_net_still_stops_it(tmp_path: Path) -> None:
    text = ZF_TRAIN.read_text().replace(
        "#layer {\n#  name: 'debug-data'",
        "layer { name: 'debug' type: 'Python' bottom: 'rpn_rois' top: 'checked'\n"
        "  python_param { module: 'rpn.debug_layer' layer: 'RPNDebugLayer' } }\n#layer {\n#",
    )
    prototxt = tmp_path / "train.prototxt"
    prototxt.write_text(text)
    with pytest.raises(
        TrtImportError,
        match=r"no converter for the Python layer "
        r"rpn\.debug_layer\.RPNDebugLayer",
    ):
        check_caffe(load_caffe(prototxt, None))
