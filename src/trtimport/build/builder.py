"""BuildOptions -> IBuilderConfig, optimization profiles, targets; the build itself."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtimport.core.backend import Backend, normalize_target
from trtimport.core.options import BuildOptions, Profile
from trtimport.core.progress import Progress
from trtimport.errors import EngineBuildError, UsageError

if TYPE_CHECKING:
    from trtimport.plugins.manager import Plugins


def shape_tensor_inputs(network: Any) -> dict[str, int]:
    """The network's shape-tensor inputs (their values set shapes) -> how many values each holds.

    TensorRT needs their values, not their shapes, in every optimization profile
    (``IOptimizationProfile.set_shape_input``).
    """
    found = {}
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        if getattr(tensor, "is_shape_tensor", False):
            shape = tuple(tensor.shape)
            found[tensor.name] = int(shape[0]) if shape else 1
    return found


def make_config(
    backend: Backend,
    builder: Any,
    network: Any,
    options: BuildOptions,
    profiles: list[Profile],
    plugins: Plugins | None = None,
) -> tuple[Any, Any]:
    """Create and fill the builder config; returns (config, cache object or None)."""
    trt = backend.trt
    threads = builder_threads(options.builder_threads)
    if backend.supports_builder_threads:
        builder.max_threads = threads
    elif threads != 1 and options.builder_threads is not None:
        raise UsageError(
            f"--builder-threads: {backend.name} {backend.version} builds on one thread only"
        )
    config = builder.create_builder_config()
    if options.workspace is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace)
    if options.optimization_level is not None:
        if not 0 <= options.optimization_level <= 5:
            raise UsageError("--opt-level must be between 0 and 5")
        config.builder_optimization_level = options.optimization_level
    if options.targets:
        _set_targets(backend, config, options.targets)
    if options.refittable:
        if not backend.supports_refit:
            raise UsageError(f"--refittable: {backend.name} {backend.version} cannot refit engines")
        config.set_flag(trt.BuilderFlag.REFIT)
    if options.strip_weights:
        if not backend.supports_strip_plan:
            raise UsageError(f"--strip-weights: {backend.name} {backend.version} has no STRIP_PLAN")
        config.set_flag(trt.BuilderFlag.STRIP_PLAN)
    if options.profiling_verbosity:
        key = options.profiling_verbosity.upper()
        if not hasattr(trt.ProfilingVerbosity, key):
            raise UsageError(
                f"--profiling-verbosity '{options.profiling_verbosity}': use "
                "none, layer_names_only or detailed"
            )
        config.profiling_verbosity = getattr(trt.ProfilingVerbosity, key)
    cache = _attach_cache(backend, config, options.cache)
    shape_inputs = shape_tensor_inputs(network) if profiles else {}
    for profile in profiles:
        trt_profile = builder.create_optimization_profile()
        for name, rng in profile.items():
            if name in shape_inputs:
                trt_profile.set_shape_input(name, rng.min, rng.opt, rng.max)
            else:
                trt_profile.set_shape(name, rng.min, rng.opt, rng.max)
        config.add_optimization_profile(trt_profile)
    if plugins is not None:
        plugins.hook.trtimport_configure_builder(config=config, options=options, backend=backend)
    return config, cache


def builder_threads(requested: int | None) -> int:
    """How many threads the builder may use: ``requested``, else every CPU this process may use.

    TensorRT's builder uses one thread unless told otherwise (``IBuilder.max_threads``, whose
    default is 1). More threads build the same engine sooner: on the ResNet-50 benchmark the
    serialized engine is byte-identical with 1, 2 and 4 threads (docs/performance.md).
    """
    if requested is not None:
        if requested < 1:
            raise UsageError(f"--builder-threads {requested}: give 1 or more threads")
        return requested
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _set_targets(backend: Backend, config: Any, targets: list[str]) -> None:
    """Build for exactly ``targets``: the count must be set before each index is filled."""
    members = [backend.compute_capability_enum(t) for t in targets]
    config.num_compute_capabilities = len(members)
    for i, member in enumerate(members):
        if not config.set_compute_capability(member, i):
            raise UsageError(
                f"--target {targets[i]}: {backend.name} {backend.version} refused this compute "
                "capability"
            )


def _attach_cache(backend: Backend, config: Any, path: Path | None) -> Any:
    """A timing cache (full TensorRT) read from ``path`` if it exists.

    TensorRT-RTX has no build-time cache (its timing cache calls are no-ops); its runtime cache
    belongs to the execution context, so the path is only recorded in the sidecar for runners.
    A cache from another TensorRT version or GPU is not an error: the build starts a fresh one.
    """
    if path is None or backend.is_rtx:
        return None
    data = path.read_bytes() if path.is_file() else b""
    cache = config.create_timing_cache(data)
    if cache is None or not config.set_timing_cache(cache, ignore_mismatch=False):
        cache = config.create_timing_cache(b"")
        config.set_timing_cache(cache, ignore_mismatch=False)
    return cache


def save_timing_cache(cache: Any, path: Path | None) -> None:
    """Write the (updated) timing cache back after a build."""
    if cache is None or path is None:
        return
    from trtimport.core.files import write_atomic

    write_atomic(path, memoryview(cache.serialize()))


_LEFT_OUT = re.compile(r"run on target\(s\): ([\w, ]+?), because (.+?)\.?$")


def targets_left_out(logger: Any) -> dict[str, str]:
    """Targets a portable TensorRT-RTX build left out (target -> why), from its log.

    TensorRT-RTX's default targets hold only "if the model precisions are supported on the
    target architecture": a model with FP8 tensors builds, but not for sm86, and the builder
    says so only in a VERBOSE message.
    """
    left_out: dict[str, str] = {}
    for message in getattr(logger, "targets_left_out", []):
        match = _LEFT_OUT.search(message)
        if match:
            for target in match.group(1).split(","):
                left_out.setdefault(target.strip(), match.group(2))
    return left_out


def resolved_targets(backend: Backend, options: BuildOptions) -> list[str]:
    """The compute capabilities the engine is built for, for the sidecar."""
    if options.targets:
        return [normalize_target(t) for t in options.targets]
    if backend.is_rtx:
        from trtimport.core.backend import RTX_PORTABLE_TARGETS

        return list(RTX_PORTABLE_TARGETS)
    return ["current-gpu"]


def progress_monitor(backend: Backend, progress: Progress) -> Any:
    """A TensorRT ``IProgressMonitor`` that reports to ``progress`` and stops when it cancels."""
    trt = backend.trt

    class ReportingMonitor(trt.IProgressMonitor):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            progress.phase_start(phase_name, parent_phase, num_steps)

        def step_complete(self, phase_name: str, step: int) -> bool:
            progress.step(phase_name, step + 1)
            return not progress.cancelled()

        def phase_finish(self, phase_name: str) -> None:
            progress.phase_finish(phase_name)

    return ReportingMonitor()


def build_serialized(
    backend: Backend,
    builder: Any,
    network: Any,
    config: Any,
    *,
    progress: Progress | None = None,
    logger: Any = None,
) -> tuple[Any, float]:
    """Build the serialized engine, reporting to ``progress``, which may cancel it."""
    progress = progress or Progress()
    start = time.perf_counter()
    failure: Exception | None = None
    with progress.cancellable():
        if backend.supports_progress_monitor:
            config.progress_monitor = progress_monitor(backend, progress)
        try:
            serialized = builder.build_serialized_network(network, config)
        except (RuntimeError, TypeError, ValueError) as err:
            serialized, failure = None, err
    seconds = time.perf_counter() - start
    if progress.cancelled():
        raise KeyboardInterrupt
    if serialized is None:
        errors = list(getattr(logger, "errors", []))
        if failure is not None:
            errors.append(str(failure))
        raise EngineBuildError(
            f"{backend.name} {backend.version} failed to build the engine"
            + (":\n" + "\n".join(f"  - {e}" for e in errors) if errors else ".")
            + "\n"
            + build_failure_hint(backend, config)
        ) from failure
    return serialized, seconds


def build_failure_hint(backend: Backend, config: Any) -> str:
    """What to try after a failed build; names GPU-only flags when no usable GPU is present."""
    trt = backend.trt
    gpu_only = [
        f"--{flag}"
        for flag, member in (("refittable", "REFIT"), ("strip-weights", "STRIP_PLAN"))
        if hasattr(trt.BuilderFlag, member) and config.get_flag(getattr(trt.BuilderFlag, member))
    ]
    problem = backend.gpu_support_problem() if gpu_only else None
    if problem:
        return (
            f"Hint: {backend.name} builds {' and '.join(gpu_only)} engines only on a supported "
            f"GPU, and this machine has none ({problem}). Build without "
            f"{' and '.join(gpu_only)}, or on a machine with an RTX GPU."
        )
    return "Run with -v to see TensorRT's warnings."
