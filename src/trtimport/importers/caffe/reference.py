"""OpenCV's Caffe runtime (``cv2.dnn.readNetFromCaffe``) as a reference :class:`Runner`.

Tensor names are the converted ONNX graph's (see the renaming rule in ``convert.py``): a blob
name means the blob's final value, ``blob/layer`` an earlier in-place value. OpenCV names
values by the layer that wrote them, so names are mapped to ``layer`` or ``layer.N``. Layer
fusion is disabled so that intermediate values are the layers' own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from trtimport.core.runner import Runner, TensorSpec
from trtimport.errors import MissingDependencyError, OutputMarkingError


def _cv2() -> Any:
    try:
        import cv2
    except ImportError as err:
        raise MissingDependencyError("Running Caffe models with OpenCV", "verify", "cv2") from err
    return cv2


class OpenCVCaffeRunner(Runner):
    """Runs a deploy prototxt + caffemodel with OpenCV's DNN module (CPU)."""

    name = "opencv"

    def __init__(self, prototxt: Path, caffemodel: Path) -> None:
        from trtimport.importers.caffe.convert import tensor_names
        from trtimport.importers.caffe.parse import load_caffe

        cv2 = _cv2()
        self.prototxt, self.caffemodel = Path(prototxt), Path(caffemodel)
        model = load_caffe(self.prototxt, None)
        self._names = tensor_names(model)
        self._inputs = [
            TensorSpec(name, tuple(model.input_shapes[blob]), np.dtype(np.float32))
            for name, blob in self._names.inputs.items()
        ]
        self._outputs = self._names.outputs()
        self._types = {layer.name: layer.type for layer in model.net.layer}
        self._net = cv2.dnn.readNetFromCaffe(str(self.prototxt), str(self.caffemodel))
        self._net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        self._net.enableFusion(False)
        self._shapes: dict[str, tuple[int, ...]] = {}

    def inputs(self) -> list[TensorSpec]:
        """The net's inputs (prototxt shapes)."""
        return list(self._inputs)

    def outputs(self) -> list[TensorSpec]:
        """The net's outputs; shapes are known after the first :meth:`infer`."""
        return [
            TensorSpec(n, tuple(self._shapes.get(n, ())), np.dtype(np.float32))
            for n in self._outputs
        ]

    def _opencv_name(self, tensor: str) -> str:
        if tensor in self._names.inputs:
            return self._names.inputs[tensor]
        found = self._names.producer(tensor)
        if found is None:
            raise OutputMarkingError(
                f"{self.prototxt}: no tensor named '{tensor}'. Outputs: {', '.join(self._outputs)}"
            )
        layer, index = found
        return layer if index == 0 else f"{layer}.{index}"

    def _detections_of(self, tensor: str) -> bool:
        found = self._names.producer(tensor)
        return found is not None and self._types.get(found[0]) == "DetectionOutput"

    def infer(
        self, feeds: dict[str, np.ndarray], outputs: list[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Run once; ``outputs`` may name any tensor of the converted graph."""
        names = list(outputs or self._outputs)
        for spec in self._inputs:
            if spec.name in feeds:
                value = np.ascontiguousarray(feeds[spec.name], dtype=np.float32)
                self._net.setInput(value, self._names.inputs[spec.name])
        results = self._net.forward([self._opencv_name(n) for n in names])
        out = {n: np.asarray(r) for n, r in zip(names, results, strict=True)}
        batch = next(iter(feeds.values())).shape[0] if feeds else 1
        for name in names:
            if self._detections_of(name):
                out[name] = _fixed_rows(out[name], batch)
        self._shapes.update({n: v.shape for n, v in out.items()})
        return out


def _fixed_rows(rows: np.ndarray, batch: int) -> np.ndarray:
    """OpenCV's DetectionOutput rows in trtimport's layout (docs/caffe.md): each image's
    detections in its own equal share of the rows, the rest -1 (OpenCV pads with zeros)."""
    flat = rows.reshape(-1, 7)
    per_image = flat.shape[0] // max(batch, 1)
    fixed = np.full_like(flat, -1.0)
    real = flat[(flat != 0).any(axis=1)]
    for image in range(batch):
        mine = real[real[:, 0] == image][:per_image]
        fixed[image * per_image : image * per_image + len(mine)] = mine
    return fixed.reshape(rows.shape)
