"""Benchmarking: per-iteration traces, trtexec-compatible statistics and ``--exportTimes`` records.

A :class:`Launcher` issues timed queries on a runner; :func:`run_benchmark` drives it through a
warm-up phase and a timed phase (at least ``iterations`` queries and at least ``duration_s``
seconds, like trtexec), and :func:`summarize` turns the traces into the numbers trtexec prints.
"""

from __future__ import annotations

import abc
import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from trtimport.core.files import atomic_path
from trtimport.errors import UsageError

if TYPE_CHECKING:
    from trtimport.core.runner import Runner

#: The percentiles reported, as trtexec does with ``--percentile=90,95,99``.
PERCENTILES = (90, 95, 99)

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


def percentile(sorted_values: list[float], p: float) -> float:
    """trtexec's percentile of ascending values.

    trtexec (``samples/common/sampleReporting.cpp: findPercentile``) takes the value at index
    ``max(N - 1 - floor((1 - p/100) * N), 0)``, computed in 32-bit floats. With exact arithmetic
    that is the nearest-rank percentile, the ``ceil(p/100 * N)``-th smallest value; float32
    rounding moves it one rank up at a few exact boundaries (p99 of 100 values is the maximum).
    The float32 arithmetic is reproduced so the numbers match trtexec's.
    """
    n = len(sorted_values)
    if n == 0:
        return float("inf")
    if not 0 <= p <= 100:
        raise UsageError(f"percentile {p} is not in [0, 100]")
    fraction = np.float32(1) - np.float32(p) / np.float32(100)
    exclude = int(fraction * np.float32(n))
    return sorted_values[max(n - 1 - exclude, 0)]


def median(sorted_values: list[float]) -> float:
    """trtexec's median: the middle value, or the mean of the two middle values."""
    return float(statistics.median(sorted_values))


@dataclass(frozen=True)
class Stats:
    """min/max/mean/median and p90/p95/p99 of one metric, in ms."""

    min: float
    max: float
    mean: float
    median: float
    p90: float
    p95: float
    p99: float

    @classmethod
    def of(cls, values: list[float]) -> Stats:
        """Statistics of ``values`` (which must not be empty)."""
        ordered = sorted(values)
        p90, p95, p99 = (percentile(ordered, p) for p in PERCENTILES)
        return cls(
            ordered[0],
            ordered[-1],
            sum(ordered) / len(ordered),
            median(ordered),
            p90,
            p95,
            p99,
        )

    def as_dict(self) -> dict[str, float]:
        """JSON-friendly form."""
        return {k: round(v, 6) for k, v in self.__dict__.items()}


@dataclass
class BenchResult:
    """Traces of a benchmark run and the statistics trtexec prints for them."""

    runner: str
    traces: list[IterationTrace]
    warmup_queries: int
    warmup_ms: float
    streams: int
    cuda_graph: bool
    data_transfers: bool

    @property
    def queries(self) -> int:
        """Timed queries."""
        return len(self.traces)

    @property
    def walltime_ms(self) -> float:
        """From the first timed query's start to the last one's end (trtexec's host walltime)."""
        return max(t.end_ms for t in self.traces) - min(t.start_ms for t in self.traces)

    @property
    def throughput_qps(self) -> float:
        """Queries per second over the walltime."""
        wall = self.walltime_ms
        return self.queries / wall * 1000.0 if wall > 0 else float("inf")

    def stats(self, metric: str) -> Stats | None:
        """Stats of ``latency``, ``enqueue``, ``h2d``, ``compute`` or ``d2h`` (None: n/a)."""
        values = [getattr(t, f"{metric}_ms") for t in self.traces]
        if any(v is None for v in values):
            return None
        return Stats.of(values)

    def summary(self) -> dict[str, Any]:
        """The ``--json`` summary."""

        def stat(metric: str) -> dict[str, float] | None:
            """The metric's statistics as a dict, or None where it does not apply."""
            s = self.stats(metric)
            return s.as_dict() if s else None

        latency = self.stats("latency")
        compute = self.stats("compute")
        return {
            "runner": self.runner,
            "queries": self.queries,
            "warmup_queries": self.warmup_queries,
            "warmup_ms": round(self.warmup_ms, 3),
            "streams": self.streams,
            "cuda_graph": self.cuda_graph,
            "data_transfers": self.data_transfers,
            "walltime_s": round(self.walltime_ms / 1000.0, 6),
            "throughput_qps": round(self.throughput_qps, 3),
            "latency_ms": latency.as_dict() if latency else None,
            "enqueue_ms": stat("enqueue"),
            "h2d_ms": stat("h2d"),
            "compute_ms": stat("compute"),
            "d2h_ms": stat("d2h"),
            "total_compute_s": round(compute.mean * self.queries / 1000.0, 6) if compute else None,
        }

    def export_records(self) -> list[dict[str, float | None]]:
        """Per-query records with trtexec's ``--exportTimes`` field names."""
        return [t.export_record() for t in self.traces]


def write_export_times(result: BenchResult, dest: Path) -> None:
    """Write the ``--exportTimes`` JSON array atomically."""
    with atomic_path(dest) as tmp:
        tmp.write_text(json.dumps(result.export_records(), indent=1) + "\n")


def run_benchmark(
    launcher: Launcher,
    *,
    runner: str,
    warmup_ms: float = 200.0,
    iterations: int = 10,
    duration_s: float = 3.0,
    streams: int = 1,
    cuda_graph: bool = False,
    data_transfers: bool = True,
) -> BenchResult:
    """Warm up for ``warmup_ms``, then time at least ``iterations`` queries over at least
    ``duration_s`` seconds (trtexec's ``--warmUp``, ``--iterations`` and ``--duration``)."""
    if iterations < 1:
        raise UsageError("--iterations must be at least 1")
    if warmup_ms < 0 or duration_s < 0:
        raise UsageError("--warmup and --duration must not be negative")
    warm_start = launcher.elapsed_ms()
    warmups = 0
    while launcher.elapsed_ms() - warm_start < warmup_ms:
        launcher.launch()
        warmups += 1
    launcher.collect()
    warm_elapsed = launcher.elapsed_ms() - warm_start
    timed_start = launcher.elapsed_ms()
    count = 0
    while count < iterations or launcher.elapsed_ms() - timed_start < duration_s * 1000.0:
        launcher.launch()
        count += 1
    traces = launcher.collect()
    return BenchResult(runner, traces, warmups, warm_elapsed, streams, cuda_graph, data_transfers)
