"""trtimport plugin: multilayer perceptrons stored as NumPy .npz files (W0, b0, W1, b1, ...)."""

import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from trtimport import ImportContext, Importer, hookimpl


class NpzMlpImporter(Importer):
    """y = relu(x @ W0 + b0) ... @ Wn + bn, with weights from an .npz file."""

    name = "npz-mlp"
    description = "multilayer perceptron weights in a NumPy .npz (W0, b0, W1, b1, ...)"
    extensions = (".npz",)

    def detect(self, path: Path, head: bytes) -> bool:
        """Claim zip files that hold a W0 array."""
        if not head.startswith(b"PK\x03\x04"):
            return False
        with zipfile.ZipFile(path) as archive:
            return "W0.npy" in archive.namelist()

    def populate(self, ctx: ImportContext) -> None:
        """Add one matrix multiply, bias and ReLU per layer."""
        trt, net = ctx.backend.trt, ctx.network
        with np.load(ctx.source, allow_pickle=False) as arrays:
            layers = [(arrays[f"W{i}"], arrays[f"b{i}"]) for i in range(len(arrays.files) // 2)]
        x = net.add_input("x", trt.float32, (1, layers[0][0].shape[0]))
        for i, (w, b) in enumerate(layers):
            w, b = (np.ascontiguousarray(a, dtype=np.float32) for a in (w, b.reshape(1, -1)))
            ctx.keepalive += [w, b]  # TensorRT reads the weights when it builds
            wt = net.add_constant(w.shape, trt.Weights(w)).get_output(0)
            bt = net.add_constant(b.shape, trt.Weights(b)).get_output(0)
            none = trt.MatrixOperation.NONE
            y = net.add_matrix_multiply(x, none, wt, none).get_output(0)
            x = net.add_elementwise(y, bt, trt.ElementWiseOperation.SUM).get_output(0)
            if i < len(layers) - 1:
                x = net.add_activation(x, trt.ActivationType.RELU).get_output(0)
        x.name = "y"
        net.mark_output(x)


@hookimpl
def trtimport_register_importers(register: Callable[[Importer], None]) -> None:
    """Register the importer."""
    register(NpzMlpImporter())
