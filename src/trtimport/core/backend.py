"""The one place that knows which TensorRT is installed.

Two Python modules provide TensorRT's network and builder API: full TensorRT (``tensorrt``,
10.x and 11.x) and TensorRT-RTX (``tensorrt_rtx``). :func:`get_backend` resolves one of them
once per process (full TensorRT preferred when both are present, ``TRTIMPORT_BACKEND`` forces
one) and every other module asks the returned :class:`Backend` what it can do instead of
testing versions itself.
"""

from __future__ import annotations

import ctypes
import functools
import importlib
import os
import sys
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from trtimport.errors import MissingDependencyError, NoGpuError, UsageError

#: Module name -> pip extra that installs it.
BACKEND_MODULES: dict[str, str] = {"tensorrt": "tensorrt", "tensorrt_rtx": "rtx"}

#: Compute capabilities TensorRT-RTX builds for when no target is given (portable engine).
RTX_PORTABLE_TARGETS = ("sm86", "sm89", "sm120")

#: Runtime API members that differ between TensorRT 10, TensorRT 11 and TensorRT-RTX: feature ->
#: (class or enum, member), and which backend has it. Code asks :meth:`Backend.has` (which looks
#: the member up on the installed module) and never tests versions; docs/runtime.md shows this
#: table and tests/runtime/test_gpu_api_names.py checks it against the installed module.
#: Sources: TensorRT's Python bindings (python/src/infer/pyCore.cpp, 10.x and 11.x) and
#: tensorrt_rtx 1.7's bindings (``dir()`` of the module).
RUNTIME_FEATURES: dict[str, tuple[str, str, frozenset[str]]] = {
    # Ask whether enqueueV3 can be captured in a CUDA graph (RTX only; TensorRT has no such call).
    "stream_capturable_query": (
        "IExecutionContext",
        "is_stream_capturable",
        frozenset({"tensorrt_rtx"}),
    ),
    # Contexts without their own scratch memory, given one with set_device_memory(ptr, size).
    "user_managed_memory": (
        "ExecutionContextAllocationStrategy",
        "USER_MANAGED",
        frozenset({"tensorrt10", "tensorrt11", "tensorrt_rtx"}),
    ),
    "set_device_memory": (
        "IExecutionContext",
        "set_device_memory",
        frozenset({"tensorrt10", "tensorrt11", "tensorrt_rtx"}),
    ),
    # Scratch size; the un-suffixed device_memory_size was deprecated in 10.1 and is not in RTX.
    "device_memory_size_v2": (
        "ICudaEngine",
        "device_memory_size_v2",
        frozenset({"tensorrt10", "tensorrt11", "tensorrt_rtx"}),
    ),
    "profile_device_memory_v2": (
        "ICudaEngine",
        "get_device_memory_size_for_profile_v2",
        frozenset({"tensorrt10", "tensorrt11", "tensorrt_rtx"}),
    ),
    # Total and stripped weight bytes (EngineStat); TensorRT 10.12 and later, 11, RTX.
    "engine_stat": ("ICudaEngine", "get_engine_stat", frozenset({"tensorrt11", "tensorrt_rtx"})),
    # A runtime config for contexts (allocation strategy, RTX runtime cache and graph strategy).
    "runtime_config": (
        "ICudaEngine",
        "create_runtime_config",
        frozenset({"tensorrt11", "tensorrt_rtx"}),
    ),
    "runtime_cache": ("IRuntimeConfig", "create_runtime_cache", frozenset({"tensorrt_rtx"})),
    # RTX captures and replays CUDA graphs itself (IRuntimeConfig.cuda_graph_strategy).
    "builtin_cuda_graphs": (
        "CudaGraphStrategy",
        "WHOLE_GRAPH_CAPTURE",
        frozenset({"tensorrt_rtx"}),
    ),
    # RTX: engines that take application memory where possible; needed for stream capture.
    "require_user_allocation": (
        "BuilderFlag",
        "REQUIRE_USER_ALLOCATION",
        frozenset({"tensorrt_rtx"}),
    ),
    # Keep refit information when serializing (a refitted --strip-weights engine stays refittable).
    "serialize_include_refit": (
        "SerializationFlag",
        "INCLUDE_REFIT",
        frozenset({"tensorrt10", "tensorrt11", "tensorrt_rtx"}),
    ),
    # Device-memory hooks set on the runtime (Runtime.gpu_allocator).
    "async_gpu_allocator": (
        "IGpuAsyncAllocator",
        "allocate_async",
        frozenset({"tensorrt10", "tensorrt11", "tensorrt_rtx"}),
    ),
    "runtime_gpu_allocator": (
        "Runtime",
        "gpu_allocator",
        frozenset({"tensorrt10", "tensorrt11", "tensorrt_rtx"}),
    ),
}


@dataclass(frozen=True)
class GpuInfo:
    """One CUDA device as the driver reports it."""

    index: int
    name: str
    compute_capability: tuple[int, int]
    memory_bytes: int

    @property
    def sm(self) -> str:
        """The device's compute capability as ``smXY``."""
        return f"sm{self.compute_capability[0]}{self.compute_capability[1]}"


@dataclass(frozen=True)
class Backend:
    """A resolved TensorRT Python module and what it supports."""

    name: str
    module: Any = field(repr=False)

    @property
    def trt(self) -> Any:
        """The TensorRT module itself (``tensorrt`` or ``tensorrt_rtx``)."""
        return self.module

    @property
    def version(self) -> str:
        """The module's version string."""
        return str(getattr(self.module, "__version__", "unknown"))

    @property
    def is_rtx(self) -> bool:
        """True for TensorRT-RTX."""
        return self.name == "tensorrt_rtx"

    @property
    def has_precision_flags(self) -> bool:
        """True if the builder still has FP16/INT8 flags (weakly typed networks)."""
        flags = self.module.BuilderFlag
        return hasattr(flags, "FP16") and hasattr(flags, "INT8")

    @property
    def strongly_typed_only(self) -> bool:
        """True if every network is strongly typed (TensorRT-RTX, TensorRT 11)."""
        return not self.has_precision_flags

    @property
    def network_flags(self) -> int:
        """Flags for ``Builder.create_network``: always strongly typed.

        TensorRT 10 creates weakly typed networks unless STRONGLY_TYPED is set; TensorRT 11 and
        TensorRT-RTX are strongly typed whatever the flag says (11 accepts and ignores it). Asking
        for it on TensorRT 10 makes every backend keep the model's own tensor types. Explicit
        batch is the only mode since TensorRT 10, so EXPLICIT_BATCH is never passed.
        """
        flag = getattr(self.module.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
        if flag is None or self.strongly_typed_only:
            return 0
        return 1 << int(flag)

    @property
    def supports_targets(self) -> bool:
        """True if engines can be built for chosen compute capabilities (TensorRT-RTX)."""
        return hasattr(self.module.IBuilderConfig, "set_compute_capability")

    @property
    def supports_refit(self) -> bool:
        """True if the builder has a REFIT flag and the module a Refitter."""
        return hasattr(self.module.BuilderFlag, "REFIT") and hasattr(self.module, "Refitter")

    @property
    def supports_strip_plan(self) -> bool:
        """True if weights can be stripped from the plan (BuilderFlag.STRIP_PLAN)."""
        return hasattr(self.module.BuilderFlag, "STRIP_PLAN")

    @property
    def supports_builder_threads(self) -> bool:
        """True if the builder can use several threads (``IBuilder.max_threads``)."""
        return hasattr(self.module.Builder, "max_threads")

    @property
    def supports_progress_monitor(self) -> bool:
        """True if the builder reports build progress through IProgressMonitor."""
        return hasattr(self.module, "IProgressMonitor")

    def has(self, feature: str) -> bool:
        """True if the installed module has the runtime ``feature`` (see RUNTIME_FEATURES)."""
        owner, member, _ = RUNTIME_FEATURES[feature]
        return hasattr(getattr(self.module, owner, None), member)

    @property
    def rtx_runnable_sms(self) -> tuple[str, ...]:
        """Compute capabilities TensorRT-RTX runs engines on (its ComputeCapability members)."""
        enum = getattr(self.module, "ComputeCapability", None)
        return tuple(sorted(m.lower() for m in dir(enum) if m.startswith("SM") and m[2:].isdigit()))

    @property
    def cache_kind(self) -> str:
        """``runtime`` for TensorRT-RTX's runtime cache, ``timing`` for TensorRT's."""
        return "runtime" if self.is_rtx else "timing"

    @property
    def onnx_parser_version(self) -> str | None:
        """The bundled ONNX parser's version, if the module reports it."""
        getter = getattr(self.module, "get_nv_onnx_parser_version", None)
        if getter is None:
            return None
        return str(getter())

    def compute_capability_enum(self, target: str) -> Any:
        """Map ``sm86`` (or ``8.6``) to the backend's ComputeCapability member."""
        if not self.supports_targets:
            raise UsageError(
                f"--target needs TensorRT-RTX; the {self.name} {self.version} backend builds "
                "for the GPU it runs on. Drop --target or set TRTIMPORT_BACKEND=tensorrt_rtx."
            )
        key = normalize_target(target).upper()
        enum = self.module.ComputeCapability
        if not hasattr(enum, key):
            known = sorted(m.lower() for m in dir(enum) if m.startswith("SM") and m[2:].isdigit())
            raise UsageError(
                f"unknown target '{target}': {self.name} {self.version} builds for "
                f"{', '.join(known)}"
            )
        return getattr(enum, key)

    def gpu_support_problem(self) -> str | None:
        """Why engines can't run here (no driver, no device, unsupported GPU), or None."""
        gpus, problem = probe_gpus()
        if problem:
            return problem
        if not gpus:
            return "no CUDA device is visible (check CUDA_VISIBLE_DEVICES and the driver)"
        if self.is_rtx:
            runnable = self.rtx_runnable_sms
            if not any(g.sm in runnable for g in gpus):
                names = ", ".join(f"{g.name} ({g.sm})" for g in gpus)
                return (
                    f"{self.name} {self.version} runs engines only on {', '.join(runnable)} "
                    f"GPUs, not on {names}; install full TensorRT "
                    "(`pip install trtimport[tensorrt]`) for these GPUs"
                )
        return None

    def require_gpu(self, what: str) -> None:
        """Raise :class:`NoGpuError` naming what is missing when engines can't run here."""
        problem = self.gpu_support_problem()
        if problem:
            raise NoGpuError(
                f"{what} needs a GPU that {self.name} {self.version} can run engines on: "
                f"{problem}. On this machine use `--backend onnxruntime` to run the model's "
                "ONNX on the CPU instead."
            )


def normalize_target(target: str) -> str:
    """``8.6``, ``86``, ``SM86`` and ``sm_86`` all become ``sm86``."""
    t = target.strip().lower().replace("_", "")
    if t.startswith("sm"):
        t = t[2:]
    t = t.replace(".", "")
    if not t.isdigit():
        raise UsageError(f"invalid target '{target}': write a compute capability like sm86 or 8.6")
    return "sm" + t


def _import_backend(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as err:
        raise MissingDependencyError(
            f"The {name} backend", BACKEND_MODULES[name], module=name
        ) from err


@functools.cache
def get_backend(name: str | None = None) -> Backend:
    """Resolve the TensorRT module once.

    ``name`` (or the ``TRTIMPORT_BACKEND`` environment variable) forces ``tensorrt`` or
    ``tensorrt_rtx``; otherwise full TensorRT is preferred when both are installed.
    """
    wanted = name or os.environ.get("TRTIMPORT_BACKEND") or None
    if wanted:
        wanted = wanted.strip().replace("-", "_").lower()
        if wanted in ("rtx", "trt_rtx"):
            wanted = "tensorrt_rtx"
        if wanted in ("trt",):
            wanted = "tensorrt"
        if wanted not in BACKEND_MODULES:
            raise UsageError(
                f"unknown TensorRT backend '{wanted}' (from TRTIMPORT_BACKEND): "
                "use tensorrt or tensorrt_rtx"
            )
        return Backend(wanted, _import_backend(wanted))
    errors: list[ImportError] = []
    for candidate in ("tensorrt", "tensorrt_rtx"):
        try:
            return Backend(candidate, importlib.import_module(candidate))
        except ImportError as err:
            errors.append(err)
    raise MissingDependencyError(
        "Building TensorRT networks (no tensorrt or tensorrt_rtx module found)", "rtx"
    ) from errors[-1]


def available_backends() -> list[str]:
    """Names of the backend modules that are installed, without importing them."""
    from importlib.util import find_spec

    return [n for n in BACKEND_MODULES if find_spec(n) is not None]


# CUDA driver API attribute numbers (cuda.h CUdevice_attribute).
_CU_ATTR_CC_MAJOR = 75
_CU_ATTR_CC_MINOR = 76


@functools.cache
def probe_gpus() -> tuple[tuple[GpuInfo, ...], str | None]:
    """Ask the CUDA driver (libcuda) which devices exist; returns (gpus, problem)."""
    try:
        if sys.platform == "win32":
            cuda: Any = ctypes.WinDLL("nvcuda.dll")
        else:
            cuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return (), "no NVIDIA driver is installed (libcuda could not be loaded)"
    if cuda.cuInit(0) != 0:
        return (), "the NVIDIA driver failed to initialize (cuInit failed)"
    count = ctypes.c_int(0)
    if cuda.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return (), "the NVIDIA driver could not count devices"
    gpus = []
    for i in range(count.value):
        dev = ctypes.c_int(0)
        cuda.cuDeviceGet(ctypes.byref(dev), i)
        name = ctypes.create_string_buffer(256)
        cuda.cuDeviceGetName(name, 256, dev)
        major, minor = ctypes.c_int(0), ctypes.c_int(0)
        cuda.cuDeviceGetAttribute(ctypes.byref(major), _CU_ATTR_CC_MAJOR, dev)
        cuda.cuDeviceGetAttribute(ctypes.byref(minor), _CU_ATTR_CC_MINOR, dev)
        mem = ctypes.c_size_t(0)
        cuda.cuDeviceTotalMem_v2(ctypes.byref(mem), dev)
        gpus.append(
            GpuInfo(i, name.value.decode(errors="replace"), (major.value, minor.value), mem.value)
        )
    return tuple(gpus), None
