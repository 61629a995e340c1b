"""The interface every runner implements (TensorRT, ONNX Runtime, reference runtimes)."""

from __future__ import annotations

import abc
import time
from dataclasses import dataclass

import numpy as np

#: trtexec's ``--exportTimes`` record keys, in trtexec's order.
EXPORT_FIELDS = (
    "startEnqMs",
    "endEnqMs",
    "startH2dMs",
    "endH2dMs",
    "startComputeMs",
    "endComputeMs",
    "startD2hMs",
    "endD2hMs",
    "h2dMs",
    "computeMs",
    "d2hMs",
    "latencyMs",
)


@dataclass(frozen=True)
class TensorSpec:
    """A runner input or output: name, shape (-1 or None for dynamic dims) and numpy dtype."""

    name: str
    shape: tuple[int | None, ...]
    dtype: np.dtype


class Runner(abc.ABC):
    """Runs inference. Use as a context manager or call :meth:`close`."""

    #: Short name shown to users (``onnxruntime``, ``tensorrt``, ``opencv``, ``tensorflow``).
    name: str = ""

    @abc.abstractmethod
    def inputs(self) -> list[TensorSpec]:
        """The model's inputs."""

    @abc.abstractmethod
    def outputs(self) -> list[TensorSpec]:
        """The model's outputs."""

    @abc.abstractmethod
    def infer(
        self, feeds: dict[str, np.ndarray], outputs: list[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Run once. ``outputs`` may name intermediate tensors where the runtime allows it."""

    @property
    def notes(self) -> list[str]:
        """Messages for the user about this runner (what it runs, what it ignored)."""
        return self.__dict__.setdefault("_notes", [])

    def add_note(self, message: str) -> None:
        """Record a message for the user."""
        self.notes.append(message)

    def tensor_names(self) -> list[str]:
        """Tensors :meth:`infer` can return, in topological order (for layer-wise checks).

        Runners that can return intermediate tensors list them all; the default is the outputs.
        """
        return [o.name for o in self.outputs()]

    def producer(self, tensor: str) -> tuple[str, str] | None:
        """(layer name, layer type) that computes ``tensor``, where the runner knows it."""
        return None

    def launcher(self, feeds: dict[str, np.ndarray], *, transfers: bool = True) -> Launcher:
        """Issues timed queries for ``bench``; the default times :meth:`infer` on the host."""
        return HostLauncher(self, feeds)

    def close(self) -> None:  # noqa: B027 - optional for runners that hold nothing
        """Release resources."""

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class IterationTrace:
    """When one query's stages started and ended, in ms since the benchmark started.

    H2D and D2H times are None where the runtime has no transfers (ONNX Runtime on the CPU, or
    ``--no-data-transfers``).
    """

    start_enq: float
    end_enq: float
    start_compute: float
    end_compute: float
    start_h2d: float | None = None
    end_h2d: float | None = None
    start_d2h: float | None = None
    end_d2h: float | None = None

    @property
    def enqueue_ms(self) -> float:
        """Host time spent enqueuing the query."""
        return self.end_enq - self.start_enq

    @property
    def compute_ms(self) -> float:
        """Compute time (GPU compute for TensorRT, the run call for host runtimes)."""
        return self.end_compute - self.start_compute

    @property
    def h2d_ms(self) -> float | None:
        """Host-to-device copy time of the inputs."""
        if self.start_h2d is None or self.end_h2d is None:
            return None
        return self.end_h2d - self.start_h2d

    @property
    def d2h_ms(self) -> float | None:
        """Device-to-host copy time of the outputs."""
        if self.start_d2h is None or self.end_d2h is None:
            return None
        return self.end_d2h - self.start_d2h

    @property
    def latency_ms(self) -> float:
        """H2D + compute + D2H, trtexec's "Latency"."""
        return (self.h2d_ms or 0.0) + self.compute_ms + (self.d2h_ms or 0.0)

    @property
    def start_ms(self) -> float:
        """When the query's first device work started."""
        return self.start_h2d if self.start_h2d is not None else self.start_compute

    @property
    def end_ms(self) -> float:
        """When the query's last device work ended."""
        return self.end_d2h if self.end_d2h is not None else self.end_compute

    def export_record(self) -> dict[str, float | None]:
        """The record trtexec's ``--exportTimes`` writes for one query (None: not applicable)."""
        values = (
            self.start_enq,
            self.end_enq,
            self.start_h2d,
            self.end_h2d,
            self.start_compute,
            self.end_compute,
            self.start_d2h,
            self.end_d2h,
            self.h2d_ms,
            self.compute_ms,
            self.d2h_ms,
            self.latency_ms,
        )
        return dict(zip(EXPORT_FIELDS, values, strict=True))


class Launcher(abc.ABC):
    """Issues timed queries on one runner; all times are ms since the launcher was created."""

    def __init__(self) -> None:
        self._t0 = time.perf_counter()

    @abc.abstractmethod
    def launch(self) -> None:
        """Enqueue one query (may wait for an earlier query to free its stream)."""

    @abc.abstractmethod
    def collect(self) -> list[IterationTrace]:
        """Wait for every launched query; their traces in launch order since the last call."""

    def elapsed_ms(self) -> float:
        """Host time since the launcher was created."""
        return (time.perf_counter() - self._t0) * 1000.0

    def close(self) -> None:  # noqa: B027 - optional for launchers that hold nothing
        """Release what the launcher holds."""


class HostLauncher(Launcher):
    """Times synchronous ``runner.infer`` calls on the host (ONNX Runtime and other CPU runtimes).

    Enqueue and compute cover the same interval (the call blocks until results are ready); there
    are no H2D/D2H transfers.
    """

    def __init__(self, runner: Runner, feeds: dict[str, np.ndarray]) -> None:
        super().__init__()
        self._runner = runner
        self._feeds = feeds
        self._done: list[IterationTrace] = []

    def launch(self) -> None:
        """Run one inference and record its interval."""
        start = self.elapsed_ms()
        self._runner.infer(self._feeds)
        end = self.elapsed_ms()
        self._done.append(IterationTrace(start, end, start, end))

    def collect(self) -> list[IterationTrace]:
        """Everything launched since the last call (host runs are already complete)."""
        done, self._done = self._done, []
        return done
