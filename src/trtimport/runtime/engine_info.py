"""What ``trtimport info ENGINE`` reports: the sidecar's facts and the engine's memory needs.

The sidecar (backend, I/O, build options) is read anywhere. Device memory, weight bytes and
per-profile scratch sizes come from the engine itself, so they need a backend that can
deserialize it, which needs a GPU it runs engines on; elsewhere the report says why they are
missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trtimport.build.engine import read_sidecar
from trtimport.core.backend import Backend
from trtimport.errors import ModelParseError
from trtimport.runtime.tensorrt import check_engine_file, engine_backend


def engine_facts(engine: Path, *, verbosity: int = 0) -> dict[str, Any]:
    """The sidecar's facts and, where the engine can be deserialized here, its memory needs."""
    engine = Path(engine)
    sidecar = read_sidecar(engine)
    facts: dict[str, Any] = {
        "engine": str(engine),
        "bytes": engine.stat().st_size if engine.is_file() else None,
        "built_with": sidecar.get("backend"),
        "inputs": sidecar.get("inputs"),
        "outputs": sidecar.get("outputs"),
        "build_options": sidecar.get("build_options"),
        "memory": None,
    }
    backend = engine_backend(engine, sidecar)
    problem = backend.gpu_support_problem()
    if problem:
        facts["memory_problem"] = (
            f"device memory and weight sizes need {backend.name} {backend.version} to "
            f"deserialize the engine, which needs a GPU it runs engines on: {problem}"
        )
        return facts
    check_engine_file(engine, sidecar)
    facts["memory"] = deserialized_memory(engine, backend, verbosity)
    return facts


def deserialized_memory(engine: Path, backend: Backend, verbosity: int = 0) -> dict[str, Any]:
    """Scratch bytes (overall and per profile), weight bytes and streamable weight bytes."""
    from trtimport.build.trtlog import make_logger
    from trtimport.runtime.cuda_api import Cuda

    cuda = Cuda()
    cuda(cuda.rt.cudaFree(0), "cudaFree(0)")
    trt = backend.trt
    logger = make_logger(backend, verbosity)
    runtime = trt.Runtime(logger)
    loaded = runtime.deserialize_cuda_engine(engine.read_bytes())
    if loaded is None:
        raise ModelParseError(
            f"{engine}: {backend.name} {backend.version} could not deserialize the engine; "
            "rebuild it here"
        )
    profiles = []
    for p in range(int(loaded.num_optimization_profiles)):
        shapes = {}
        for i in range(loaded.num_io_tensors):
            name = loaded.get_tensor_name(i)
            if loaded.get_tensor_mode(name) != trt.TensorIOMode.INPUT:
                continue
            lo, opt, hi = loaded.get_tensor_profile_shape(name, p)
            shapes[name] = {"min": list(lo), "opt": list(opt), "max": list(hi)}
        profiles.append(
            {
                "index": p,
                "device_memory_bytes": int(loaded.get_device_memory_size_for_profile_v2(p)),
                "shapes": shapes,
            }
        )
    memory: dict[str, Any] = {
        "device_memory_bytes": int(loaded.device_memory_size_v2),
        "streamable_weights_bytes": int(loaded.streamable_weights_size),
        "weights_bytes": None,
        "profiles": profiles,
    }
    if backend.has("engine_stat"):
        memory["weights_bytes"] = int(loaded.get_engine_stat(trt.EngineStat.TOTAL_WEIGHTS_SIZE))
    return memory
