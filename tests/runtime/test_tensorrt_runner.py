"""The TensorRT runner up to the first call that needs a GPU (this machine has none).

The engine is real (built by TensorRT-RTX on the CPU); discovery from its sidecar, the backend
and file checks run for real; the GPU problem comes from the real driver probe, except in the
Hopper test, which replaces the probe's answer to show what TensorRT-RTX users on an H100 see.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from runtime_models import built_engine, copy_engine, make_cnn

from trtimport.build.engine import read_sidecar
from trtimport.core import backend as backend_module
from trtimport.core.backend import GpuInfo, get_backend
from trtimport.errors import ModelParseError, NoGpuError, UsageError
from trtimport.runners import is_engine_file, make_runner
from trtimport.runtime.tensorrt import (
    TensorRTRunner,
    check_engine_file,
    engine_backend,
    engine_io,
    runtime_cache_path,
)

needs_no_gpu = pytest.mark.skipif(
    get_backend().gpu_support_problem() is None, reason="a usable GPU is present"
)


def test_io_discovered_from_sidecar():
    engine = built_engine()
    inputs, outputs = engine_io(engine, read_sidecar(engine))
    assert [(s.name, s.shape, s.dtype) for s in inputs] == [
        ("x", (1, 1, 28, 28), np.dtype("float32"))
    ]
    assert [(s.name, s.shape) for s in outputs] == [("prob", (1, 10))]
    assert engine_backend(engine, read_sidecar(engine)).name == get_backend().name
    assert runtime_cache_path(engine).name == "cnn.engine.rtcache"
    given = {"cache": {"kind": "runtime", "path": "/caches/cnn.rtcache"}}
    assert runtime_cache_path(engine, given) == Path("/caches/cnn.rtcache")
    assert runtime_cache_path(engine, {"cache": {"kind": "timing", "path": "t.cache"}}) == Path(
        str(engine) + ".rtcache"
    )
    assert is_engine_file(engine) and not is_engine_file(engine.parent / "cnn.onnx")


@needs_no_gpu
def test_no_gpu_error_names_the_problem_and_the_alternative():
    engine = built_engine()
    problem = get_backend().gpu_support_problem()
    with pytest.raises(NoGpuError) as info:
        TensorRTRunner.from_file(engine)
    message = str(info.value)
    assert problem in message
    assert "--backend onnxruntime" in message
    assert str(engine.parent / "cnn.onnx") in message  # the model to run instead


def test_hopper_is_refused_by_tensorrt_rtx(monkeypatch):
    if not get_backend().is_rtx:
        pytest.skip("the TensorRT-RTX backend is not the one in use")
    hopper = GpuInfo(0, "NVIDIA H100 80GB HBM3", (9, 0), 80 << 30)
    monkeypatch.setattr(backend_module, "probe_gpus", lambda: ((hopper,), None))
    with pytest.raises(NoGpuError) as info:
        TensorRTRunner.from_file(built_engine())
    message = str(info.value)
    assert "NVIDIA H100 80GB HBM3 (sm90)" in message
    assert "trtimport[tensorrt]" in message and "--backend onnxruntime" in message


@needs_no_gpu
def test_factory_routes(tmp_path):
    engine = built_engine()
    with pytest.raises(UsageError, match="runs only on TensorRT"):
        make_runner(engine, "onnxruntime")
    with pytest.raises(NoGpuError):
        make_runner(engine, "auto")
    model = make_cnn(tmp_path / "cnn.onnx")
    with pytest.raises(NoGpuError, match="--backend onnxruntime"):
        make_runner(model, "tensorrt")
    with make_runner(model, "auto") as runner:
        assert runner.name == "onnxruntime"


def test_engine_file_checks(tmp_path):
    engine = copy_engine(tmp_path)
    sidecar = read_sidecar(engine)
    check_engine_file(engine, sidecar)
    data = engine.read_bytes()
    engine.write_bytes(data[:-1])
    with pytest.raises(ModelParseError, match=r"changed after its sidecar.*size differs"):
        check_engine_file(engine, sidecar)
    engine.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    if sidecar["engine"].get("sha256"):
        with pytest.raises(ModelParseError, match="SHA-256 differs"):
            check_engine_file(engine, sidecar)
    other = dict(sidecar, backend=dict(sidecar["backend"], version="0.0.1"))
    with pytest.raises(UsageError, match="rebuild the engine with this version"):
        engine_backend(engine, other)
    (tmp_path / "cnn.engine.json").unlink()
    with pytest.raises(ModelParseError, match="no sidecar"):
        TensorRTRunner.from_file(engine)


def test_malformed_sidecar(tmp_path):
    engine = copy_engine(tmp_path)
    side = Path(str(engine) + ".json")
    data = json.loads(side.read_text())
    data["inputs"] = [{"name": "x"}]
    side.write_text(json.dumps(data))
    with pytest.raises(ModelParseError, match="malformed"):
        TensorRTRunner.from_file(engine)


def test_cuda_errors_become_inference_errors():
    pytest.importorskip("cuda.bindings.runtime")
    from trtimport.errors import InferenceError
    from trtimport.runtime.cuda_api import Cuda

    cuda = Cuda()
    result = cuda.rt.cudaGetDeviceCount()
    if int(result[0]) == 0:
        pytest.skip("a CUDA device is present")
    with pytest.raises(InferenceError, match="cudaGetDeviceCount"):
        cuda(result, "cudaGetDeviceCount")


@pytest.mark.parametrize("dtype", ["bfloat16", "float8", "int4"])
def test_io_numpy_cannot_hold_is_named_clearly(tmp_path, dtype):
    from trtimport.errors import InferenceError

    engine = copy_engine(tmp_path)
    side = Path(str(engine) + ".json")
    data = json.loads(side.read_text())
    data["inputs"][0]["dtype"] = dtype
    side.write_text(json.dumps(data))
    with pytest.raises(InferenceError, match=f"'x' has type {dtype}, which numpy cannot hold"):
        engine_io(engine, read_sidecar(engine))


def test_auto_falls_back_to_onnxruntime_with_a_note(tmp_path):
    if get_backend().gpu_support_problem() is None:
        pytest.skip("a usable GPU is present")
    with make_runner(make_cnn(tmp_path / "cnn.onnx"), "auto") as runner:
        assert runner.name == "onnxruntime"
        assert any(
            n.startswith("ran on ONNX Runtime: engines cannot run here (") for n in runner.notes
        )


def test_info_engine_without_a_gpu(tmp_path):
    from trtimport.runtime.engine_info import engine_facts

    engine = copy_engine(tmp_path)
    facts = engine_facts(engine)
    assert facts["inputs"][0]["name"] == "x" and facts["outputs"][0]["name"] == "prob"
    assert facts["bytes"] == engine.stat().st_size
    if get_backend().gpu_support_problem() is None:
        assert facts["memory"]["device_memory_bytes"] > 0
    else:
        assert facts["memory"] is None
        assert "deserialize the engine, which needs a GPU" in facts["memory_problem"]
