"""The MNIST LeNet's real weights as read by OpenCV (the Caffe reference runtime), as .npz."""

from __future__ import annotations

from pathlib import Path

import numpy as np

MNIST = Path(__file__).resolve().parents[1] / "examples" / "mnist"
LENET_LAYERS = ("conv1", "conv2", "ip1", "ip2")


def opencv_lenet():  # type: ignore[no-untyped-def]
    """OpenCV's net for examples/mnist/lenet.prototxt + lenet.caffemodel."""
    import cv2

    return cv2.dnn.readNetFromCaffe(str(MNIST / "lenet.prototxt"), str(MNIST / "lenet.caffemodel"))


def write_lenet_npz(dest: Path) -> Path:
    """Save every LeNet blob as ``<layer>/<index>`` in ``dest`` (a .npz file)."""
    net = opencv_lenet()
    arrays = {f"{layer}/{i}": net.getParam(layer, i) for layer in LENET_LAYERS for i in range(2)}
    np.savez(dest, **arrays)
    return dest
