"""A real Intel Caffe net: the ResNet-50 train_val of Intel's multinode model zoo.

It uses Intel's fields (the net's ``bn_stats_batch_size``, BatchNorm ``filler``, the data
layers' ``random_resize_param``/``random_aspect_ratio_param`` and ``shuffle``). Converted with
Caffe's TEST-phase rules and seeded random weights from make-weights, it must give OpenCV 4.14's
result for the same net written as a plain deploy prototxt (data and loss layers taken out,
Intel's fields cleared).
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
from caffe_harness import close, rng
from google.protobuf import text_format

from trtimport.importers.caffe.convert import caffe_to_onnx
from trtimport.importers.caffe.make_weights import make_caffe_weights
from trtimport.importers.caffe.parse import load_caffe
from trtimport.importers.caffe.proto import caffe_pb2

NET = Path(__file__).resolve().parents[2] / "data" / "caffe" / "train_val"
RESNET = NET / "IntelCaffe-ResNet-50-train_val.prototxt"


def _plain_deploy(text: str) -> str:
    """The TEST net as a BVLC deploy prototxt that OpenCV reads."""
    net = text_format.Parse(text, caffe_pb2.NetParameter())
    net.ClearField("bn_stats_batch_size")
    kept = [
        layer for layer in net.layer if layer.type not in ("Data", "SoftmaxWithLoss", "Accuracy")
    ]
    for layer in kept:
        layer.batch_norm_param.ClearField("filler")
        if not layer.batch_norm_param.ListFields():
            layer.ClearField("batch_norm_param")
    del net.layer[:]
    net.layer.extend(kept)
    net.input.append("data")
    net.input_shape.add().dim.extend([1, 3, 224, 224])
    return text_format.MessageToString(net)


def test_intel_resnet50_train_val_matches_opencv(tmp_path: Path) -> None:
    model = load_caffe(RESNET, None)
    assert model.problems == []  # every Intel field is known
    weights = make_caffe_weights(RESNET, tmp_path / "r50.caffemodel", seed=0)
    model = load_caffe(RESNET, weights.path)
    conversion = caffe_to_onnx(model, tmp_path / "r50.onnx")
    assert conversion.inputs == {"data": (1, 3, 224, 224)}
    assert conversion.outputs == {"fc1000": (1, 1000)}
    notes = "\n".join(model.notes)
    assert "dropped 3 loss/accuracy layer(s)" in notes
    assert notes.count("the net's outputs include what they read: fc1000\n") == 1
    x = rng(50).standard_normal((1, 3, 224, 224)).astype(np.float32)
    session = ort.InferenceSession(str(conversion.path), providers=["CPUExecutionProvider"])
    (ours,) = session.run(["fc1000"], {"data": x})
    deploy = tmp_path / "deploy.prototxt"
    deploy.write_text(_plain_deploy(RESNET.read_text()))
    net = cv2.dnn.readNetFromCaffe(str(deploy), str(weights.path))
    net.setInput(x)
    reference = net.forward("fc1000")
    assert float(np.abs(reference).max()) > 0.1
    close(ours, reference, 1e-4)


def test_intel_folded_caffemodel_gives_the_same_net(tmp_path: Path) -> None:
    """The weights laid out as Intel Caffe writes them (each Scale's blobs moved into the
    BatchNorm before it, the Scale layers absent) convert to the same function."""
    weights = make_caffe_weights(RESNET, tmp_path / "r50.caffemodel", seed=1)
    plain = load_caffe(RESNET, weights.path)
    folded = load_caffe(RESNET, weights.path)
    layers = list(folded.net.layer)
    moved = 0
    for before, layer in pairwise(layers):
        if before.type == "BatchNorm" and layer.type == "Scale":
            folded.weights[before.name] = [
                *folded.weights[before.name],
                *folded.weights.pop(layer.name),
            ]
            moved += 1
    assert moved == 53
    x = rng(51).standard_normal((1, 3, 224, 224)).astype(np.float32)
    results = []
    for name, model in (("plain", plain), ("folded", folded)):
        conversion = caffe_to_onnx(model, tmp_path / f"{name}.onnx")
        session = ort.InferenceSession(str(conversion.path), providers=["CPUExecutionProvider"])
        results.append(session.run(["fc1000"], {"data": x})[0])
    close(results[1], results[0], 1e-5)
