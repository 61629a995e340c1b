"""trtexec-compatible statistics, traces and --exportTimes records."""

from __future__ import annotations

import json

import pytest
from runtime_models import make_cnn

from trtimport.core.runner import EXPORT_FIELDS, IterationTrace
from trtimport.errors import UsageError
from trtimport.runtime.bench import (
    BenchResult,
    Stats,
    percentile,
    run_benchmark,
    write_export_times,
)
from trtimport.runtime.onnxruntime import OnnxRuntimeRunner


def test_nearest_rank_by_hand():
    # 20 values 1..20 in shuffled order. Nearest rank: the ceil(p/100 * 20)-th smallest.
    values = sorted([7, 3, 19, 1, 12, 20, 5, 16, 9, 2, 14, 11, 18, 4, 8, 13, 6, 17, 10, 15])
    assert percentile(values, 90) == 18  # ceil(18.0) = 18th
    assert percentile(values, 95) == 19  # ceil(19.0) = 19th
    assert percentile(values, 99) == 20  # ceil(19.8) = 20th
    assert percentile(values, 50) == 10  # ceil(10.0) = 10th
    assert percentile(values, 0) == 1
    assert percentile(values, 100) == 20
    # 7 values: p90 -> ceil(6.3) = 7th, p50 -> ceil(3.5) = 4th.
    seven = [0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5]
    assert percentile(seven, 90) == 6.5
    assert percentile(seven, 50) == 3.5


def test_trtexec_float32_boundary():
    # trtexec computes (1 - 99/100) * 100 in float32 = 0.99999905 -> excludes 0 values, so p99 of
    # 100 values is the maximum (exact nearest rank would give the 99th value).
    values = [float(i) for i in range(1, 101)]
    assert percentile(values, 99) == 100.0
    assert percentile(values, 95) == 95.0
    assert percentile(values, 90) == 90.0
    with pytest.raises(UsageError):
        percentile(values, 101)


def test_stats_and_median():
    s = Stats.of([4.0, 1.0, 3.0, 2.0])
    assert (s.min, s.max, s.mean, s.median) == (1.0, 4.0, 2.5, 2.5)
    assert Stats.of([3.0, 1.0, 2.0]).median == 2.0


def test_trace_metrics_and_export_record():
    t = IterationTrace(
        start_enq=1.0,
        end_enq=1.25,
        start_compute=2.0,
        end_compute=5.0,
        start_h2d=1.5,
        end_h2d=2.0,
        start_d2h=5.0,
        end_d2h=5.5,
    )
    assert (t.enqueue_ms, t.h2d_ms, t.compute_ms, t.d2h_ms) == (0.25, 0.5, 3.0, 0.5)
    assert t.latency_ms == 4.0
    record = t.export_record()
    assert tuple(record) == EXPORT_FIELDS
    assert record["startH2dMs"] == 1.5 and record["latencyMs"] == 4.0
    host = IterationTrace(0.0, 2.0, 0.0, 2.0)
    assert host.h2d_ms is None and host.latency_ms == 2.0
    assert host.export_record()["d2hMs"] is None


def test_throughput_from_walltime():
    traces = [IterationTrace(i * 2.0, i * 2.0 + 1, i * 2.0, i * 2.0 + 1) for i in range(5)]
    result = BenchResult("x", traces, 0, 0.0, 1, False, False)
    assert result.walltime_ms == 9.0
    assert result.throughput_qps == pytest.approx(5 / 9.0 * 1000)
    summary = result.summary()
    assert summary["latency_ms"]["p99"] == 1.0
    assert summary["h2d_ms"] is None and summary["d2h_ms"] is None


def test_run_benchmark_on_onnxruntime(tmp_path):
    import numpy as np

    path = make_cnn(tmp_path / "cnn.onnx")
    with OnnxRuntimeRunner(path) as runner:
        feeds = {"x": np.zeros((1, 1, 28, 28), np.float32)}
        result = run_benchmark(
            runner.launcher(feeds), runner="ort", warmup_ms=5, iterations=25, duration_s=0.0
        )
    assert result.queries == 25 and result.warmup_queries >= 1
    starts = [t.start_enq for t in result.traces]
    assert starts == sorted(starts)
    dest = tmp_path / "times.json"
    write_export_times(result, dest)
    records = json.loads(dest.read_text())
    assert len(records) == 25 and all(tuple(r) == EXPORT_FIELDS for r in records)
    with pytest.raises(UsageError):
        run_benchmark(runner.launcher(feeds), runner="ort", iterations=0)
