"""Excerpts of SENet, ShuffleNet/MobileNet and NVCaffe deploy nets (forks/excerpts/).

Their repositories publish no licence that allows committing the nets, so each excerpt is
written for trtimport with the same layer types and fields as the published deploy prototxts
(SOURCES.md names them). With seeded random weights, each is converted, run on ONNX Runtime and
compared with a numpy forward pass of the fork's C++ (``caffe_numpy``): OpenCV 4.14 cannot
create ConvolutionDepthwise/DepthwiseConvolution or Reduction layers and computes Axpy with
the operands swapped. The NVCaffe caffemodel (fp16 ``raw_data``, the layer fields NVCaffe
writes) is compared with OpenCV, which reads fp16 blobs too.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest
from caffe_numpy import assert_matches_caffe_forward, run_converted
from conftest import REPO
from google.protobuf import text_format
from test_caffe_zoo import rel_error

import trtimport
from trtimport.errors import ModelParseError, ShapeError, UnsupportedLayerError
from trtimport.importers.caffe.convert import caffe_to_onnx
from trtimport.importers.caffe.inputs import override_input_shapes
from trtimport.importers.caffe.make_weights import make_caffe_weights
from trtimport.importers.caffe.parse import load_caffe
from trtimport.importers.caffe.proto import caffe_pb2
from trtimport.onnxtools.protowire import encode_varint

EXCERPTS = REPO / "tests" / "data" / "caffe" / "forks" / "excerpts"
TOLERANCE = 1e-4
#: excerpt -> blobs compared (and the net's input name).
NETS = {
    # Axpy joining SE-ResNet bottlenecks; SE-BN-Inception's Reshape + two-bottom Scale axis 0.
    "SENet-blocks": ("data", ["conv2_1", "conv2_2", "inception_3b/output", "classifier", "prob"]),
    # ShuffleChannel, ConvolutionDepthwise, 3-group 1x1 convolutions; a v2 unit (Slice,
    # DepthwiseConvolution, Concat, ShuffleChannel group 2); ReLU6.
    "ShuffleNet-units": ("data", ["shuffle2", "resx2_elewise", "blk2b_shuffle", "fc1000"]),
    # HSwish, HSigmoid on an InnerProduct's N x C, two-bottom Scale axis 0, ReLU6.
    "MobileNetV3-hswish": ("data", ["conv1", "conv3-2/dwise-se-fc2", "conv3-2/dwise/scale"]),
}


@pytest.mark.parametrize("name", list(NETS))
def test_fork_excerpt_matches_numpy_caffe(name: str, tmp_path: Path) -> None:
    prototxt = EXCERPTS / f"{name}.prototxt"
    input_name, compared = NETS[name]
    weights = make_caffe_weights(prototxt, tmp_path / f"{name}.caffemodel", 0, {}).path
    model = load_caffe(prototxt, weights)
    _, feeds, ours = run_converted(model, tmp_path / f"{name}.onnx", compared, 3)
    assert list(feeds) == [input_name]
    assert_matches_caffe_forward(name, model, feeds, ours, TOLERANCE)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(NETS))
def test_fork_excerpt_builds_with_tensorrt(name: str, tmp_path: Path) -> None:
    prototxt = EXCERPTS / f"{name}.prototxt"
    weights = make_caffe_weights(prototxt, tmp_path / f"{name}.caffemodel", 0, {}).path
    conversion = caffe_to_onnx(load_caffe(prototxt, weights), tmp_path / f"{name}.onnx")
    result = trtimport.convert(
        conversion.path,
        tmp_path / f"{name}.engine",
        build_options=trtimport.BuildOptions(progress=False),
    )
    assert result.engine_bytes


def test_mobilenet_v3_export_squeeze_excitation(tmp_path: Path) -> None:
    """The MobileNetV3 export's Reductions (axis 3, then 2), InnerProduct on N x C and Reshape
    convert exactly; its Eltwise PROD of N x C x H x W by N x C x 1 x 1 is refused as Caffe's
    EltwiseLayer refuses it (equal shapes only), with the SENet-style way out."""
    prototxt = EXCERPTS / "MobileNetV3-se.prototxt"
    head = tmp_path / "head.prototxt"
    text = prototxt.read_text()
    head.write_text(text[: text.index('layer {\n  name: "mul2"')])
    weights = make_caffe_weights(head, tmp_path / "head.caffemodel", 0, {}).path
    compared = ["mul1", "mean2", "fc2", "view1"]
    model = load_caffe(head, weights)
    _, feeds, ours = run_converted(model, tmp_path / "head.onnx", compared, 3)
    assert list(feeds) == ["blob1"]
    assert_matches_caffe_forward("MobileNetV3-se head", model, feeds, ours, TOLERANCE)

    with pytest.raises(ShapeError) as err:
        caffe_to_onnx(load_caffe(prototxt, weights), tmp_path / "whole.onnx")
    message = str(err.value)
    assert "'mul2' (Eltwise" in message and "MobileNetV3-se.prototxt:" in message
    assert "[1, 8, 1, 1], expected [1, 8, 8, 8]" in message and "Scale with axis: 0" in message
    assert not (tmp_path / "whole.onnx").exists()


#: NVCaffe's LayerParameter numbers (forward_type 145 ... cudnn_math_override 150) as its
#: caffemodels carry them: FLOAT16 forward and backward types, FLOAT math, cuDNN math 1.
NVCAFFE_LAYER_FIELDS = ((145, 2), (146, 2), (147, 1), (148, 1), (150, 1))


def _nvcaffe_caffemodel(fp32: Path, out: Path, raw_type: int = caffe_pb2.FLOAT16) -> None:
    """``fp32`` rewritten as NVCaffe 0.17 writes an fp16 net: every blob as little-endian
    ``raw_data`` of ``raw_type``, each layer with NVCaffe's type fields (by number)."""
    net = caffe_pb2.NetParameter.FromString(fp32.read_bytes())
    dtype = {caffe_pb2.FLOAT16: "<f2", caffe_pb2.INT: "<i4"}[raw_type]
    data = b""
    for layer in net.layer:
        for blob in layer.blobs:
            values = np.asarray(blob.data, np.float32).astype(dtype)
            blob.ClearField("data")
            blob.raw_data_type = raw_type
            blob.raw_data = values.tobytes()
        body = layer.SerializeToString()
        for number, value in NVCAFFE_LAYER_FIELDS:
            body += encode_varint(number << 3) + encode_varint(value)
        data += encode_varint(100 << 3 | 2) + encode_varint(len(body)) + body
    out.write_bytes(
        encode_varint(1 << 3 | 2) + encode_varint(len(net.name)) + net.name.encode() + data
    )


def _without_nvcaffe_fields(prototxt: Path, out: Path) -> None:
    """The net without NVCaffe's fields, for OpenCV (whose caffe.proto lacks them)."""
    net = caffe_pb2.NetParameter()
    text_format.Parse(prototxt.read_text(), net)
    for field in (
        "default_forward_type",
        "default_backward_type",
        "default_forward_math",
        "default_backward_math",
        "global_grad_scale",
        "default_conv_algos_override",
        "reduce_buckets",
        "default_cudnn_math_override",
    ):
        net.ClearField(field)
    for layer in net.layer:
        for field in ("forward_type", "backward_type", "forward_math", "backward_math"):
            layer.ClearField(field)
        layer.ClearField("debug")
        layer.ClearField("cudnn_math_override")
        layer.convolution_param.ClearField("cudnn_convolution_algo_seeker")
        layer.convolution_param.ClearField("conv_algos_override")
        for field in ("engine", "scale_filler", "bias_filler"):
            layer.batch_norm_param.ClearField(field)
    out.write_text(text_format.MessageToString(net))


def test_nvcaffe_fp16_caffemodel_matches_opencv(tmp_path: Path) -> None:
    prototxt = EXCERPTS / "NVCaffe-fp16.prototxt"
    fp32 = make_caffe_weights(prototxt, tmp_path / "fp32.caffemodel", 0, {}).path
    fp16 = tmp_path / "fp16.caffemodel"
    _nvcaffe_caffemodel(fp32, fp16)
    # The logits and the Softmax (OpenCV fuses the in-place ReLU into conv1/bn's blob).
    compared = ["fc", "prob"]
    model = load_caffe(prototxt, fp16)
    _, feeds, ours = run_converted(model, tmp_path / "fp16.onnx", compared, 3)
    (x,) = feeds.values()
    assert model.net.default_forward_type == caffe_pb2.FLOAT16
    assert model.net.layer[1].forward_type == caffe_pb2.FLOAT16
    stored = np.asarray(caffe_pb2.NetParameter.FromString(fp32.read_bytes()).layer[1].blobs[0].data)
    assert np.array_equal(
        model.weights["conv1"][0].ravel(), stored.astype("<f2").astype(np.float32)
    )

    plain = tmp_path / "plain.prototxt"
    _without_nvcaffe_fields(prototxt, plain)
    net = cv2.dnn.readNetFromCaffe(str(plain), str(fp16))
    net.setInput(x, "data")
    theirs = dict(zip(compared, net.forward(compared), strict=True))
    errors = {n: rel_error(ours[n], theirs[n]) for n in compared}
    print("NVCaffe fp16: " + ", ".join(f"{n} {e:.1e}" for n, e in errors.items()))
    assert max(errors.values()) <= TOLERANCE, errors


def test_nvcaffe_raw_data_of_integer_type_is_refused(tmp_path: Path) -> None:
    prototxt = EXCERPTS / "NVCaffe-fp16.prototxt"
    fp32 = make_caffe_weights(prototxt, tmp_path / "fp32.caffemodel", 0, {}).path
    ints = tmp_path / "int.caffemodel"
    _nvcaffe_caffemodel(fp32, ints, caffe_pb2.INT)
    with pytest.raises(ModelParseError) as err:
        load_caffe(prototxt, ints)
    message = str(err.value)
    assert str(ints) in message and "raw_data of type INT" in message
    assert "DOUBLE, FLOAT or FLOAT16" in message


def test_hard_swish_and_hard_sigmoid_are_refused_as_ambiguous(tmp_path: Path) -> None:
    """Forks define HardSwish/HardSigmoid with different formulas: both are reported at once,
    each with the definitions and the ways out, before weights are asked for."""
    text = (EXCERPTS / "MobileNetV3-hswish.prototxt").read_text()
    prototxt = tmp_path / "hard.prototxt"
    prototxt.write_text(
        text.replace('type: "HSwish"', 'type: "HardSwish"').replace(
            'type: "HSigmoid"', 'type: "HardSigmoid"'
        )
    )
    with pytest.raises(UnsupportedLayerError) as err:
        caffe_to_onnx(load_caffe(prototxt, None), tmp_path / "hard.onnx")
    message = str(err.value)
    assert "'activation1_1' (HardSwish, " in message and "'relu5_2' (HardSigmoid, " in message
    assert "x * min(max(0.2 x + 0.5, 0), 1)" in message and "write the net with HSwish" in message
    assert "alpha x + beta" in message and "write the net with HSigmoid" in message
    assert not (tmp_path / "hard.onnx").exists()


NVCAFFE_DATA_LAYERS = """layer {
  name: "data"
  type: "Data"
  top: "data"
  top: "label"
  include { phase: TRAIN }
  transform_param {
    mirror: true
    crop_size: 16
    use_gpu_transform: true
    random_seed: 7
    img_rand_resize_lower: 16
    img_rand_resize_upper: 24
    var_sz_img_enabled: true
    display: false
    num_labels: 5
    distort_param { brightness_prob: 0.5 brightness_delta: 32 hue_prob: 0.5 hue_delta: 18 }
    expand_param { prob: 0.5 max_expand_ratio: 4.0 }
    noise_param { prob: 0.1 saltpepper_param { fraction: 0.01 value: 0 } }
    emit_constraint { emit_type: CENTER }
  }
  data_param {
    source: "train_lmdb"
    batch_size: 64
    backend: LMDB
    threads: 4
    parser_threads: 2
    cache: true
    shuffle: true
  }
}
layer {
  name: "data"
  type: "Data"
  top: "data"
  top: "label"
  include { phase: TEST }
  transform_param { crop_size: 16 use_gpu_transform: true }
  data_param { source: "val_lmdb" batch_size: 2 backend: LMDB threads: 1 }
}
"""
NVCAFFE_LOSS_LAYERS = """layer {
  name: "loss"
  type: "SoftmaxWithLoss"
  bottom: "fc"
  bottom: "label"
  top: "loss"
  forward_type: FLOAT
}
layer {
  name: "accuracy"
  type: "Accuracy"
  bottom: "fc"
  bottom: "label"
  top: "accuracy"
  include { phase: TEST }
}
"""


def test_nvcaffe_train_val_converts_to_the_deploy_net(tmp_path: Path) -> None:
    """NVCaffe's train_val fields (its data reader and GPU transformation, with SSD's
    augmentation policies) only shape training input: the TEST net is the deploy net."""
    deploy_text = (EXCERPTS / "NVCaffe-fp16.prototxt").read_text()
    start = deploy_text.index('layer {\n  name: "data"')
    end = deploy_text.index('layer {\n  name: "conv1"')
    prob = deploy_text.index('layer {\n  name: "prob"')
    train_val = tmp_path / "train_val.prototxt"
    train_val.write_text(
        deploy_text[:start] + NVCAFFE_DATA_LAYERS + deploy_text[end:prob] + NVCAFFE_LOSS_LAYERS
    )
    weights = make_caffe_weights(
        EXCERPTS / "NVCaffe-fp16.prototxt", tmp_path / "w.caffemodel", 0, {}
    ).path
    deploy = caffe_to_onnx(
        load_caffe(EXCERPTS / "NVCaffe-fp16.prototxt", weights),
        tmp_path / "deploy.onnx",
        outputs=["fc"],
    )
    train = load_caffe(train_val, weights)
    override_input_shapes(train, {"data": (2, 3, 16, 16)})
    conversion = caffe_to_onnx(train, tmp_path / "train.onnx")
    assert conversion.outputs == deploy.outputs == {"fc": (2, 5)}
    x = np.random.default_rng(5).uniform(-1, 1, (2, 3, 16, 16)).astype(np.float32)
    run = {
        name: ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
            ["fc"], {"data": x}
        )[0]
        for name, path in (("deploy", deploy.path), ("train", conversion.path))
    }
    assert np.array_equal(run["deploy"], run["train"])
