"""Build one-layer (or few-layer) Caffe nets from text, convert them, run them on ONNX Runtime."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

from trtimport.importers.caffe.convert import caffe_to_onnx
from trtimport.importers.caffe.parse import load_caffe


def net_text(layers: str, inputs: Mapping[str, Sequence[int]]) -> str:
    """A deploy prototxt with ``input:`` declarations and the given layer text."""
    head = "".join(
        f'input: "{name}"\ninput_shape {{ {" ".join(f"dim: {d}" for d in shape)} }}\n'
        for name, shape in inputs.items()
    )
    return head + layers


def layer(
    layer_type: str,
    params: str = "",
    bottoms: Sequence[str] = ("x",),
    tops: Sequence[str] = ("y",),
    name: str = "L",
) -> str:
    """One ``layer { … }`` block."""
    wires = "".join(f' bottom: "{b}"' for b in bottoms) + "".join(f' top: "{t}"' for t in tops)
    return f'layer {{ name: "{name}" type: "{layer_type}"{wires} {params} }}\n'


def run(
    tmp_path: Path,
    text: str,
    feeds: Mapping[str, np.ndarray],
    weights: Mapping[str, Sequence[np.ndarray]] | None = None,
    *,
    opset: int = 17,
    outputs: Sequence[str] = (),
) -> dict[str, np.ndarray]:
    """Convert the net (checked by onnx.checker) and run it on ONNX Runtime; outputs by name."""
    proto = tmp_path / "net.prototxt"
    proto.write_text(text)
    model = load_caffe(proto, None)
    model.weights = {k: [np.asarray(b, np.float32) for b in v] for k, v in (weights or {}).items()}
    dest = tmp_path / "net.onnx"
    conversion = caffe_to_onnx(model, dest, opset=opset, outputs=outputs)
    onnx.checker.check_model(str(dest), full_check=True)
    session = ort.InferenceSession(str(dest), providers=["CPUExecutionProvider"])
    names = list(conversion.outputs)
    feeds32 = {k: np.asarray(v, np.float32) for k, v in feeds.items()}
    return dict(zip(names, session.run(names, feeds32), strict=True))


def close(actual: np.ndarray, expected: np.ndarray, rel: float = 1e-5) -> None:
    """Same shape, and max|a-b| <= rel * max(max|b|, 1)."""
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = max(float(np.abs(expected).max(initial=0.0)), 1.0)
    err = float(np.abs(actual - expected).max(initial=0.0))
    assert err <= rel * scale, f"max abs error {err:.3g} (scale {scale:.3g})"


def rng(seed: int = 0) -> np.random.Generator:
    """A seeded generator."""
    return np.random.default_rng(seed)


def build_prototxt(tmp_path: Path, text: str, stem: str) -> Any:
    """Convert a weightless prototxt and build it with the backend; returns the ConvertResult."""
    import trtimport

    prototxt = tmp_path / f"{stem}.prototxt"
    prototxt.write_text(text)
    conversion = caffe_to_onnx(load_caffe(prototxt, None), tmp_path / f"{stem}.onnx")
    return trtimport.convert(
        conversion.path,
        tmp_path / f"{stem}.engine",
        build_options=trtimport.BuildOptions(progress=False),
    )


def fork_and_opencv(
    tmp_path: Path,
    fork_text: str,
    opencv_text: str,
    x: np.ndarray,
    output: str,
    *,
    opencv_output: str | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """A fork's net converted and run on ONNX Runtime, and OpenCV running ``opencv_text`` (the
    same net in fields OpenCV knows), both with one caffemodel that make-weights writes for the
    fork's net. Returns (ours, OpenCV's) for blob ``output`` (OpenCV's layer ``opencv_output``)."""
    import cv2

    from trtimport.importers.caffe.make_weights import make_caffe_weights

    fork, plain = tmp_path / "fork.prototxt", tmp_path / "opencv.prototxt"
    fork.write_text(fork_text)
    plain.write_text(opencv_text)
    weights = make_caffe_weights(fork, tmp_path / "w.caffemodel", seed=seed)
    conversion = caffe_to_onnx(load_caffe(fork, weights.path), tmp_path / "fork.onnx")
    session = ort.InferenceSession(str(conversion.path), providers=["CPUExecutionProvider"])
    x32 = np.asarray(x, np.float32)
    (ours,) = session.run([output], {session.get_inputs()[0].name: x32})
    net = cv2.dnn.readNetFromCaffe(str(plain), str(weights.path))
    net.setInput(x32)
    return ours, net.forward(opencv_output or output)
