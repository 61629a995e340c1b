"""Seeded random caffemodels: blob shapes per layer type, the wire format, usable magnitudes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from trtimport.errors import TrtImportError
from trtimport.importers.caffe.make_weights import make_caffe_weights
from trtimport.importers.caffe.parse import load_caffe
from trtimport.importers.caffe.proto import caffe_pb2

REPO = Path(__file__).resolve().parents[3]
CAFFE = REPO / "tests" / "data" / "caffe"

EVERY_BLOB_LAYER = """
input: "data" input_shape { dim: 2 dim: 4 dim: 6 dim: 6 }
input: "ids" input_shape { dim: 2 dim: 3 }
layer { name: "deconv" type: "Deconvolution" bottom: "data" top: "deconv"
  convolution_param { num_output: 6 group: 2 kernel_size: 3 stride: 2 } }
layer { name: "dw" type: "ConvolutionDepthwise" bottom: "deconv" top: "dw"
  convolution_param { num_output: 6 kernel_h: 3 kernel_w: 1 bias_term: false } }
layer { name: "bn" type: "BatchNorm" bottom: "dw" top: "dw" }
layer { name: "bn2" type: "BN" bottom: "dw" top: "bn2" }
layer { name: "scale" type: "Scale" bottom: "bn2" top: "bn2" scale_param { bias_term: true } }
layer { name: "scale_hw" type: "Scale" bottom: "bn2" top: "shw"
  scale_param { axis: 2 num_axes: -1 } }
layer { name: "bias" type: "Bias" bottom: "shw" top: "shw" }
layer { name: "prelu" type: "PReLU" bottom: "shw" top: "shw" prelu_param { channel_shared: true } }
layer { name: "prelu_c" type: "PReLU" bottom: "shw" top: "pc" }
layer { name: "norm" type: "Normalize" bottom: "pc" top: "norm"
  norm_param { across_spatial: false channel_shared: false } }
layer { name: "param" type: "Parameter" top: "p" parameter_param { shape { dim: 6 } } }
layer { name: "scale2" type: "Scale" bottom: "norm" bottom: "p" top: "s2"
  scale_param { bias_term: true } }
layer { name: "ip_t" type: "InnerProduct" bottom: "s2" top: "ip_t"
  inner_product_param { num_output: 5 axis: 2 transpose: true } }
layer { name: "embed" type: "Embed" bottom: "ids" top: "emb"
  embed_param { num_output: 7 input_dim: 10 } }
"""

EXPECTED = {
    "deconv": [(4, 3, 3, 3), (6,)],
    "dw": [(6, 1, 3, 1)],
    "bn": [(6,), (6,), (1,)],
    "bn2": [(1, 6, 1, 1)] * 4,
    "scale": [(6,), (6,)],
    "scale_hw": [(11, 13)],
    "bias": [(6,)],
    "prelu": [(1,)],
    "prelu_c": [(6,)],
    "norm": [(6,)],
    "param": [(6,)],
    "scale2": [(6,)],
    "ip_t": [(11 * 13, 5), (5,)],
    "embed": [(10, 7), (7,)],
}


def test_blob_shapes_for_every_layer_with_weights(tmp_path: Path) -> None:
    prototxt = tmp_path / "all.prototxt"
    prototxt.write_text(EVERY_BLOB_LAYER)
    made = make_caffe_weights(prototxt, tmp_path / "all.caffemodel", seed=3)
    assert made.blobs == EXPECTED
    model = load_caffe(prototxt, made.path)
    assert {k: [b.shape for b in v] for k, v in model.weights.items()} == EXPECTED
    _, bn_var, bn_factor = model.weights["bn"]
    assert (bn_var > 0).all() and bn_factor.tolist() == [1.0]
    assert (model.weights["bn2"][3] > 0).all()


def test_streamed_file_is_a_canonical_caffemodel(tmp_path: Path) -> None:
    made = make_caffe_weights(CAFFE / "MTCNN-ONet.prototxt", tmp_path / "o.caffemodel", seed=1)
    data = made.path.read_bytes()
    assert len(data) == made.bytes_written
    net = caffe_pb2.NetParameter.FromString(data)
    assert net.SerializeToString() == data  # field order and lengths as protobuf writes them
    again = make_caffe_weights(CAFFE / "MTCNN-ONet.prototxt", tmp_path / "o2.caffemodel", seed=1)
    assert again.path.read_bytes() == data
    other = make_caffe_weights(CAFFE / "MTCNN-ONet.prototxt", tmp_path / "o3.caffemodel", seed=2)
    assert other.path.read_bytes() != data


def test_opencv_runs_it_and_activations_stay_moderate(tmp_path: Path) -> None:
    """Random weights must not blow up or vanish through a deep residual net with BatchNorm."""
    cv2 = pytest.importorskip("cv2")
    prototxt = CAFFE / "ResNet-50.prototxt"
    made = make_caffe_weights(prototxt, tmp_path / "r.caffemodel", seed=0)
    net = cv2.dnn.readNetFromCaffe(str(prototxt), str(made.path))
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    net.setInput(x)
    logits = net.forward("fc1000")
    assert 0.1 < float(np.abs(logits).mean()) < 100.0


def test_unfollowable_shapes_are_reported_together(tmp_path: Path) -> None:
    prototxt = tmp_path / "bad.prototxt"
    prototxt.write_text(
        'input: "data" input_shape { dim: 1 dim: 3 dim: 4 dim: 4 }\n'
        'layer { name: "big" type: "Convolution" bottom: "data" top: "a"\n'
        "  convolution_param { num_output: 2 kernel_size: 9 } }\n"
        'layer { name: "grp" type: "Convolution" bottom: "data" top: "b"\n'
        "  convolution_param { num_output: 2 kernel_size: 1 group: 2 } }\n"
    )
    with pytest.raises(TrtImportError) as info:
        make_caffe_weights(prototxt, tmp_path / "bad.caffemodel")
    message = str(info.value)
    assert "2 problem(s)" in message
    assert f"layer 'big' (Convolution, {prototxt}:2)" in message
    assert f"layer 'grp' (Convolution, {prototxt}:4)" in message
    assert not (tmp_path / "bad.caffemodel").exists()


def test_cli_make_weights(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "lenet.caffemodel"
    result = cli(
        "caffe", "make-weights", str(CAFFE / "LeNet.prototxt"), "-o", str(out), "--seed", "0"
    )
    assert result.returncode == 0, result.stderr
    assert "wrote" in result.stdout and "8 random weight blobs for 4 layers" in result.stdout
    result = cli("caffe", "make-weights", str(CAFFE / "LeNet.prototxt"), "-o", str(out), "--json")
    report = json.loads(result.stdout)
    assert report["seed"] == 0 and report["layers"]["ip1"] == [[500, 800], [500]]
    assert report["bytes"] == out.stat().st_size


ENET_LIKE = """
layer { name: "data" type: "Input" top: "data"
  input_param { shape { dim: 1 dim: 3 dim: 16 dim: 16 } } }
layer { name: "conv0" type: "Convolution" bottom: "data" top: "conv0"
  param { name: "shared_w" } convolution_param { num_output: 8 kernel_size: 3 pad: 1
  bias_term: false } }
layer { name: "bn0" type: "BN" bottom: "conv0" top: "bn0" bn_param { bn_mode: INFERENCE } }
layer { name: "prelu0" type: "PReLU" bottom: "bn0" top: "prelu0" }
layer { name: "pool" type: "Pooling" bottom: "prelu0" top: "pool" top: "mask"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "asym" type: "Convolution" bottom: "pool" top: "asym"
  convolution_param { num_output: 8 kernel_h: 5 kernel_w: 1 pad_h: 2 pad_w: 0 } }
layer { name: "up" type: "Upsample" bottom: "asym" bottom: "mask" top: "up"
  upsample_param { scale: 2 } }
layer { name: "deconv" type: "Deconvolution" bottom: "up" top: "deconv"
  convolution_param { num_output: 4 kernel_size: 2 stride: 2 bias_term: false } }
layer { name: "conv1" type: "Convolution" bottom: "deconv" top: "conv1"
  param { name: "other" } convolution_param { num_output: 4 kernel_size: 1 } }
layer { name: "conv2" type: "Convolution" bottom: "conv1" top: "conv2"
  param { name: "other" } convolution_param { num_output: 4 kernel_size: 1 } }
"""


def test_enet_style_nets_get_every_blob_the_converter_reads(tmp_path: Path) -> None:
    import onnxruntime as ort

    from trtimport.importers.caffe.convert import caffe_to_onnx

    prototxt = tmp_path / "enet.prototxt"
    prototxt.write_text(ENET_LIKE)
    made = make_caffe_weights(prototxt, tmp_path / "enet.caffemodel", seed=5)
    assert made.blobs["conv0"] == [(8, 3, 3, 3)]  # bias_term: false
    assert made.blobs["deconv"] == [(8, 4, 2, 2)]
    # bn_mode INFERENCE: SegNet's two blobs (scale, shift), statistics folded in
    assert made.blobs["bn0"] == [(1, 8, 1, 1)] * 2 and made.blobs["prelu0"] == [(8,)]
    model = load_caffe(prototxt, made.path)
    conv1, conv2 = model.weights["conv1"], model.weights["conv2"]
    assert np.array_equal(conv1[0], conv2[0])  # param { name } shares the weight blob
    assert not np.array_equal(conv1[1], conv2[1])  # but not the unnamed bias
    conversion = caffe_to_onnx(model, tmp_path / "enet.onnx")
    session = ort.InferenceSession(str(conversion.path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32)
    (y,) = session.run(["conv2"], {"data": x})
    assert y.shape == (1, 4, 32, 32) and np.isfinite(y).all()


def test_make_weights_takes_input_shapes(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    prototxt = tmp_path / "noshape.prototxt"
    prototxt.write_text(
        'input: "data" input_shape { dim: 1 dim: 1 dim: 1 dim: 1 }\n'
        'layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"\n'
        "  inner_product_param { num_output: 3 } }\n"
    )
    out = tmp_path / "w.caffemodel"
    result = cli(
        "caffe", "make-weights", str(prototxt), "-o", str(out), "--input", "data:2x3x4x5", "--json"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["layers"]["ip"] == [[3, 60], [3]]
