"""The hand-written LeNet (examples/mnist/lenet_net.py), exported, against OpenCV's Caffe LeNet."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mnist_weights import MNIST, opencv_lenet, write_lenet_npz

pytest.importorskip("cv2")
ort = pytest.importorskip("onnxruntime")

SCRIPT = MNIST / "lenet_net.py"


def _digits() -> tuple[np.ndarray, np.ndarray]:
    with np.load(MNIST / "digits.npz", allow_pickle=False) as data:
        images = data["images"].astype(np.float32)[:, None] / 256.0
        return images, data["labels"]


def _exported_lenet(weights: Path, dest: Path) -> Path:
    from trtimport.core.options import ImportOptions
    from trtimport.export.writer import export_network_onnx
    from trtimport.populate import import_model

    with import_model(SCRIPT, options=ImportOptions(weights=weights)) as imported:
        return export_network_onnx(imported.network, dest, imported.backend)


def _compare_with_opencv(exported: Path) -> None:
    images, labels = _digits()
    net = opencv_lenet()
    sess = ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    worst, same, correct = 0.0, 0, 0
    for image, label in zip(images, labels, strict=True):
        net.setInput(image[None])
        want = net.forward()
        (got,) = sess.run(None, {"data": image[None]})
        worst = max(worst, float(np.max(np.abs(got - want)) / np.max(np.abs(want))))
        same += int(got.argmax() == want.argmax())
        correct += int(got.argmax() == label)
    print(
        f"\nhand-built LeNet vs OpenCV: max rel err {worst:.2e}, same digit {same}/1000, "
        f"correct {correct}/1000"
    )
    assert worst <= 1e-5
    assert same == len(images)
    assert correct >= 999


def test_hand_built_lenet_matches_opencv(tmp_path: Path) -> None:
    """Weights read by OpenCV into .npz: the exported network names the same 1,000 digits."""
    exported = _exported_lenet(write_lenet_npz(tmp_path / "lenet.npz"), tmp_path / "lenet.onnx")
    _compare_with_opencv(exported)


def test_hand_built_lenet_on_the_caffemodel(tmp_path: Path) -> None:
    """The example's documented command: weights straight from lenet.caffemodel."""
    pytest.importorskip("trtimport.importers.caffe.parse")
    _compare_with_opencv(_exported_lenet(MNIST / "lenet.caffemodel", tmp_path / "lenet.onnx"))


def test_layer_names_are_kept(tmp_path: Path) -> None:
    """Node and tensor names in the export are the script's layer names."""
    import onnx

    model = onnx.load(
        str(_exported_lenet(write_lenet_npz(tmp_path / "w.npz"), tmp_path / "n.onnx"))
    )
    names = {n.name for n in model.graph.node}
    assert {"conv1", "pool1", "conv2", "pool2", "ip1", "relu1", "ip2", "prob"} <= names
    assert [o.name for o in model.graph.output] == ["prob"]
    onnx.checker.check_model(model, full_check=True)
