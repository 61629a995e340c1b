"""The TensorRT side on a real GPU. Skipped on machines where no TensorRT backend can run engines
(CI, the development machines, and the H200 trtimport's GPU mechanics ran on, which has no
TensorRT that runs there), so these tests have not run yet."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from runtime_models import cnn_weights, make_cnn, ort_outputs

from trtimport.core.backend import get_backend
from trtimport.errors import TrtImportError


def _run_problem() -> str | None:
    try:
        return get_backend().gpu_support_problem()
    except TrtImportError as err:  # no TensorRT module at all
        return str(err)


pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        _run_problem() is not None, reason=f"TensorRT cannot run engines here: {_run_problem()}"
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


def test_shared_scratch_memory_pool_and_info(engine, x):
    from trtimport.runtime.engine_info import engine_facts
    from trtimport.runtime.tensorrt import TensorRTRunner

    expected = ort_outputs(engine.parent / "cnn.onnx", {"x": x})["prob"]
    with TensorRTRunner.from_file(
        engine, streams=2, shared_scratch=True, memory_pool=True
    ) as runner:
        np.testing.assert_allclose(runner.infer({"x": x})["prob"], expected, atol=ATOL)
        memory = runner.memory()
    assert memory["managed_by"] == "trtimport" and memory["shared"]
    assert memory["pool"]["allocations"] >= 1
    facts = engine_facts(engine)["memory"]
    assert facts["device_memory_bytes"] == memory["bytes_each"]
    assert len(facts["profiles"]) == 1 and facts["profiles"][0]["shapes"]["x"]["max"] == [
        1,
        1,
        28,
        28,
    ]


def test_refitted_stripped_engine_stays_refittable(tmp_path, x):
    from trtimport.core.options import BuildOptions
    from trtimport.pipeline import convert
    from trtimport.refit import plan_refit, refit_engine

    model = make_cnn(tmp_path / "cnn.onnx")
    engine = tmp_path / "cnn.engine"
    options = BuildOptions(progress=False, refittable=True, strip_weights=True)
    convert(model, engine, build_options=options)
    np.savez(tmp_path / "w1.npz", **cnn_weights(seed=3))
    np.savez(tmp_path / "w2.npz", **cnn_weights(seed=4))
    with plan_refit(engine, tmp_path / "w1.npz") as plan:
        once = refit_engine(plan, tmp_path / "once.engine")
    with plan_refit(once, tmp_path / "w2.npz") as plan:  # refittable still
        refit_engine(plan, tmp_path / "twice.engine")
