"""Builder configuration: options, targets, the progress monitor, and build failures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from onnx_models import conv_relu, save

from trtimport import BuildOptions, EngineBuildError, UsageError, convert, import_model
from trtimport.build.builder import builder_threads, make_config, progress_monitor
from trtimport.core.progress import Progress

pytest.importorskip("tensorrt_rtx")


class RecordingProgress(Progress):
    """Records what the build reports; cancels when told to."""

    def __init__(self, cancel: bool = False) -> None:
        self.started: list[tuple[str, str | None, int]] = []
        self.steps = 0
        self.finished: list[str] = []
        self.cancel = cancel

    def phase_start(self, name: str, parent: str | None = None, steps: int = 0) -> None:
        self.started.append((name, parent, steps))

    def step(self, name: str, done: int) -> None:
        self.steps += 1

    def phase_finish(self, name: str) -> None:
        self.finished.append(name)

    def cancelled(self) -> bool:
        return self.cancel


def _imported(tmp_path: Path) -> Any:
    return import_model(save(conv_relu(), tmp_path / "m.onnx"))


def test_options_reach_the_builder_config(tmp_path: Path) -> None:
    with _imported(tmp_path) as imp:
        trt = imp.backend.trt
        options = BuildOptions(
            workspace=1 << 26,
            optimization_level=2,
            targets=["sm86", "sm120"],
            profiling_verbosity="detailed",
        )
        config, cache = make_config(imp.backend, imp.builder, imp.network, options, [])
        assert config.get_memory_pool_limit(trt.MemoryPoolType.WORKSPACE) == 1 << 26
        assert config.builder_optimization_level == 2
        assert config.num_compute_capabilities == 2
        assert config.get_compute_capability(0) == trt.ComputeCapability.SM86
        assert config.get_compute_capability(1) == trt.ComputeCapability.SM120
        assert config.profiling_verbosity == trt.ProfilingVerbosity.DETAILED
        assert cache is None  # TensorRT-RTX has no build-time cache


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (BuildOptions(optimization_level=9), "--opt-level must be between 0 and 5"),
        (BuildOptions(profiling_verbosity="loud"), "use none, layer_names_only or detailed"),
        (BuildOptions(targets=["sm99"]), "unknown target 'sm99'"),
        (BuildOptions(builder_threads=0), "--builder-threads 0: give 1 or more threads"),
    ],
)
def test_bad_options_are_usage_errors(tmp_path: Path, options: BuildOptions, message: str) -> None:
    with _imported(tmp_path) as imp, pytest.raises(UsageError, match=message):
        make_config(imp.backend, imp.builder, imp.network, options, [])


def test_the_builder_uses_every_cpu_unless_told(tmp_path: Path) -> None:
    import os

    cpus = len(os.sched_getaffinity(0))
    assert builder_threads(None) == cpus
    assert builder_threads(3) == 3
    with _imported(tmp_path) as imp:
        assert imp.builder.max_threads == 1  # TensorRT's own default
        make_config(imp.backend, imp.builder, imp.network, BuildOptions(), [])
        assert imp.builder.max_threads == cpus
        make_config(imp.backend, imp.builder, imp.network, BuildOptions(builder_threads=1), [])
        assert imp.builder.max_threads == 1


def test_builder_threads_do_not_change_the_engine(tmp_path: Path) -> None:
    """The reason more threads can be the default: the serialized engine is the same."""
    model = Path(__file__).parents[2] / "examples" / "onnx" / "tiny_cnn.onnx"
    engines = []
    for threads in (1, 2, 3):
        engine = tmp_path / f"t{threads}.engine"
        convert(model, engine, build_options=BuildOptions(builder_threads=threads, progress=False))
        engines.append(engine.read_bytes())
    assert engines[0] == engines[1] == engines[2]


def test_progress_monitor_reports_phases(tmp_path: Path) -> None:
    with _imported(tmp_path) as imp:
        config, _ = make_config(imp.backend, imp.builder, imp.network, BuildOptions(), [])
        progress = RecordingProgress()
        config.progress_monitor = progress_monitor(imp.backend, progress)
        assert imp.builder.build_serialized_network(imp.network, config) is not None
        assert progress.started and sorted(progress.finished) == sorted(
            name for name, _, _ in progress.started
        )


def test_progress_monitor_cancels_the_build(tmp_path: Path) -> None:
    with _imported(tmp_path) as imp:
        config, _ = make_config(imp.backend, imp.builder, imp.network, BuildOptions(), [])
        config.progress_monitor = progress_monitor(imp.backend, RecordingProgress(cancel=True))
        assert imp.builder.build_serialized_network(imp.network, config) is None


def test_a_build_that_reports_nothing_still_cancels(tmp_path: Path) -> None:
    """``-q`` builds with ``BuildOptions(progress=False)``: no reports, but a cancel (Ctrl-C,
    SIGTERM) must still stop the build cleanly. Without it, the signal's KeyboardInterrupt
    was raised inside TensorRT's callback, which TensorRT turned into a failed build (exit 1,
    "failed to build the engine"), seen once in CI."""
    model = save(conv_relu(), tmp_path / "m.onnx")
    progress = RecordingProgress(cancel=True)
    with pytest.raises(KeyboardInterrupt):
        convert(model, tmp_path / "m.engine", build_options=BuildOptions(progress=False),
                progress=progress)  # fmt: skip
    assert progress.started == [] and progress.steps == 0  # nothing reported
    assert not list(tmp_path.glob("m.engine*"))


def test_gpu_only_flags_fail_with_a_hint_on_a_machine_without_gpu(tmp_path: Path) -> None:
    from trtimport.core.backend import get_backend

    if get_backend().gpu_support_problem() is None:
        pytest.skip("this machine has a usable GPU: refittable builds work here")
    model = save(conv_relu(), tmp_path / "m.onnx")
    with pytest.raises(EngineBuildError) as info:
        convert(model, tmp_path / "m.engine", build_options=BuildOptions(refittable=True))
    message = str(info.value)
    assert "failed to build the engine" in message
    assert "--refittable engines only on a supported GPU" in message
    assert not list(tmp_path.glob("m.engine*"))
