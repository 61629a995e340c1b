"""make_runner on a format converted to ONNX: the runner keeps its own copy of the ONNX."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from runtime_models import make_cnn, ort_outputs

from trtimport.core.importer import ImportContext, Importer
from trtimport.core.options import ImportOptions
from trtimport.core.runner import Runner
from trtimport.importers.base import OnnxBasedImporter
from trtimport.plugins.hookspecs import hookimpl
from trtimport.plugins.manager import load_plugins
from trtimport.runners import make_runner
from trtimport.runtime.onnxruntime import OnnxRuntimeRunner
from trtimport.verify.verify import verify_model


class PackedOnnxImporter(OnnxBasedImporter):
    """A test format: ``PACKED`` + an ONNX model; converting it writes the ONNX to ``dest``."""

    name = "packed"
    extensions = (".packed",)

    def detect(self, path: Path, head: bytes) -> bool:
        return head.startswith(b"PACKED")

    def to_onnx(self, ctx: ImportContext, dest: Path) -> Path:
        dest.write_bytes(ctx.source.read_bytes()[len(b"PACKED") :])
        return dest

    def reference_runner(self, source: Path, options: ImportOptions) -> Runner | None:
        """ONNX Runtime on the unpacked model, kept beside the packed file."""
        unpacked = source.with_suffix(".unpacked.onnx")
        unpacked.write_bytes(source.read_bytes()[len(b"PACKED") :])
        return OnnxRuntimeRunner(unpacked, label="unpacked model (reference)")


class PackedPlugin:
    @hookimpl
    def trtimport_register_importers(self, register: Callable[[Importer], None]) -> None:
        register(PackedOnnxImporter())


def test_intermediate_onnx_outlives_the_import(tmp_path):
    onnx_path = make_cnn(tmp_path / "cnn.onnx")
    packed = tmp_path / "cnn.packed"
    packed.write_bytes(b"PACKED" + onnx_path.read_bytes())
    plugins = load_plugins(extra_plugins=[PackedPlugin()])
    x = np.random.default_rng(2).random((1, 1, 28, 28)).astype(np.float32)
    runner = make_runner(packed, "onnxruntime", plugins=plugins)
    try:
        copy = runner.path  # type: ignore[attr-defined]
        assert copy.is_file() and copy.parent != tmp_path  # the import's own folder is gone
        assert "intermediate ONNX of cnn.packed" in runner.label  # type: ignore[attr-defined]
        np.testing.assert_array_equal(
            runner.infer({"x": x})["prob"], ort_outputs(onnx_path, {"x": x})["prob"]
        )
    finally:
        runner.close()
    assert not copy.parent.exists()


def test_verify_compares_the_intermediate_onnx_on_cpu(tmp_path):
    from trtimport.core.backend import get_backend

    if get_backend().gpu_support_problem() is None:
        pytest.skip("a usable GPU is present: the engine is the candidate")
    packed = tmp_path / "cnn.packed"
    packed.write_bytes(b"PACKED" + make_cnn(tmp_path / "cnn.onnx").read_bytes())
    plugins = load_plugins(extra_plugins=[PackedPlugin()])
    report = verify_model(packed, plugins=plugins, layerwise=True, atol=0, rtol=0)
    labels = [c.label for c in report.candidates]
    assert labels[0].startswith("the intermediate ONNX of cnn.packed on onnxruntime")
    assert report.reference == "unpacked model (reference)"
    assert report.passed and report.candidates[0].compared_tensors == 8


def test_the_old_backend_keyword_still_picks_the_runtime_with_a_warning(tmp_path: Path) -> None:
    model = make_cnn(tmp_path / "cnn.onnx")
    with pytest.warns(DeprecationWarning, match="now 'runtime'"):
        runner = make_runner(model, backend="onnxruntime")
    with runner:
        assert isinstance(runner, OnnxRuntimeRunner)
    with make_runner(model, runtime="onnxruntime") as runner:
        assert isinstance(runner, OnnxRuntimeRunner)
