"""Benchmarking: per-iteration traces, trtexec-compatible statistics and ``--exportTimes`` records.

A :class:`Launcher` issues timed queries on a runner; :func:`run_benchmark` drives it through a
warm-up phase and a timed phase (at least ``iterations`` queries and at least ``duration_s``
seconds, like trtexec), and :func:`summarize` turns the traces into the numbers trtexec prints.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trtimport.core.files import atomic_path
from trtimport.core.runner import IterationTrace, Launcher
from trtimport.errors import UsageError
from trtimport.runtime import TRTEXEC_DEFAULTS


def trtexec_settings(version: int, **explicit: bool | None) -> dict[str, bool]:
    """trtexec ``version``'s defaults with the explicitly given settings (not None) applied."""
    if version not in TRTEXEC_DEFAULTS:
        raise UsageError(f"--trtexec {version}: use one of {', '.join(map(str, TRTEXEC_DEFAULTS))}")
    unknown = sorted(set(explicit) - set(TRTEXEC_DEFAULTS[version]))
    if unknown:
        raise UsageError(f"unknown trtexec setting(s): {', '.join(unknown)}")
    given = {k: v for k, v in explicit.items() if v is not None}
    return TRTEXEC_DEFAULTS[version] | given


#: The percentiles reported, as trtexec does with ``--percentile=90,95,99``.
PERCENTILES = (90, 95, 99)


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
    spin_wait: bool = False
    #: The trtexec version whose defaults the settings started from (None: not given).
    trtexec: int | None = None
    #: Scratch memory of the execution contexts (TensorRT runner only).
    memory: dict[str, Any] | None = None

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
            "spin_wait": self.spin_wait,
            "trtexec": self.trtexec,
            "memory": self.memory,
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
    spin_wait: bool = False,
    trtexec: int | None = None,
    memory: dict[str, Any] | None = None,
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
    return BenchResult(
        runner,
        traces,
        warmups,
        warm_elapsed,
        streams,
        cuda_graph,
        data_transfers,
        spin_wait,
        trtexec,
        memory,
    )
