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
            usable = [g for g in gpus if g.compute_capability[0] != 9]
            if not usable:
                names = ", ".join(f"{g.name} ({g.sm})" for g in gpus)
                return (
                    f"TensorRT-RTX does not run engines on {names}: it supports GeForce/RTX "
                    "and workstation GPUs (Turing and newer), not data-center Hopper; install "
                    "full TensorRT (`pip install trtimport[tensorrt]`) for these GPUs"
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
