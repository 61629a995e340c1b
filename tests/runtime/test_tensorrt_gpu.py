"""The TensorRT side on a real GPU. Skipped on machines without one (including CI and the
machines this was written on, so these tests have not run yet)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from runtime_models import cnn_weights, make_cnn, ort_outputs

from trtimport.core.backend import get_backend

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        get_backend().gpu_support_problem() is not None,
        reason=f"no usable GPU: {get_backend().gpu_support_problem()}",
    ),
]

ATOL = 2e-3  # TF32 and kernel choice differ from ONNX Runtime's float32 on the CPU


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> Path:
    from trtimport.core.options import BuildOptions
    from trtimport.pipeline import convert

    folder = tmp_path_factory.mktemp("gpu")
    model = make_cnn(folder / "cnn.onnx")
    convert(model, folder / "cnn.engine", build_options=BuildOptions(progress=False))
    return folder / "cnn.engine"


@pytest.fixture
def x() -> np.ndarray:
    return np.random.default_rng(5).random((1, 1, 28, 28)).astype(np.float32)


def test_engine_matches_onnxruntime(engine, x):
    from trtimport.runtime.tensorrt import TensorRTRunner, runtime_cache_path

    expected = ort_outputs(engine.parent / "cnn.onnx", {"x": x})["prob"]
    with TensorRTRunner.from_file(engine) as runner:
        np.testing.assert_allclose(runner.infer({"x": x})["prob"], expected, atol=ATOL)
        np.testing.assert_allclose(runner.infer({"x": x})["prob"], expected, atol=ATOL)
    if get_backend().is_rtx:
        assert runtime_cache_path(engine).is_file()


def test_cuda_graph_and_streams(engine, x):
    from trtimport.runtime.bench import run_benchmark
    from trtimport.runtime.tensorrt import TensorRTRunner

    expected = ort_outputs(engine.parent / "cnn.onnx", {"x": x})["prob"]
    with TensorRTRunner.from_file(engine, streams=2, cuda_graph=True) as runner:
        for _ in range(3):
            np.testing.assert_allclose(runner.infer({"x": x})["prob"], expected, atol=ATOL)
        for transfers in (True, False):
            launcher = runner.launcher({"x": x}, transfers=transfers)
            result = run_benchmark(
                launcher, runner="trt", warmup_ms=20, iterations=50, duration_s=0, streams=2
            )
            launcher.close()
            summary = result.summary()
            assert summary["queries"] == 50 and summary["compute_ms"]["min"] > 0
            assert (summary["h2d_ms"] is not None) == transfers
            for t in result.traces:
                assert t.start_enq <= t.end_enq and t.start_compute <= t.end_compute


def test_verify_engine_layerwise(engine, x, tmp_path):
    from trtimport.verify.verify import verify_model

    np.save(tmp_path / "x.npy", x)
    report = verify_model(
        engine.parent / "cnn.onnx", files={"x": tmp_path / "x.npy"}, layerwise=True, atol=ATOL
    )
    assert report.passed, report.as_dict()
    assert report.candidates[0].compared_tensors >= 2


def test_refit_gives_the_new_models_numbers(tmp_path, x):
    from trtimport.core.options import BuildOptions
    from trtimport.pipeline import convert
    from trtimport.refit import plan_refit, refit_engine
    from trtimport.runtime.tensorrt import TensorRTRunner

    model = make_cnn(tmp_path / "cnn.onnx")
    engine = tmp_path / "cnn.engine"
    convert(model, engine, build_options=BuildOptions(progress=False, refittable=True))
    new = make_cnn(tmp_path / "new.onnx", cnn_weights(seed=11))
    np.savez(tmp_path / "new.npz", **cnn_weights(seed=11))
    for weights in (new, tmp_path / "new.npz"):
        with plan_refit(engine, weights) as plan:
            out = refit_engine(plan, tmp_path / f"refit-{weights.suffix[1:]}.engine")
        with TensorRTRunner.from_file(out) as runner:
            got = runner.infer({"x": x})["prob"]
        np.testing.assert_allclose(got, ort_outputs(new, {"x": x})["prob"], atol=ATOL)
        assert json.loads(Path(str(out) + ".json").read_text())["refit"]["weights_set"] == 5
