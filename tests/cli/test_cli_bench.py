"""``trtimport bench`` on the ONNX Runtime runner: every field, --json, --export-times."""

from __future__ import annotations

import json

from runtime_models import make_cnn

from trtimport.cli import main
from trtimport.core.runner import EXPORT_FIELDS

FAST = ["--warmup", "10", "--iterations", "20", "--duration", "0"]


def test_every_field_printed(tmp_path, capsys):
    model = make_cnn(tmp_path / "cnn.onnx")
    assert main(["bench", str(model), "--backend", "onnxruntime", *FAST]) == 0
    out = capsys.readouterr().out
    for label in (
        "runner: cnn.onnx on onnxruntime",
        "Warmup completed ",
        "Timing trace has 20 queries over ",
        "Throughput: ",
        "Latency: min = ",
        "Enqueue Time: min = ",
        "H2D Latency: n/a",
        "Compute Time (host, onnxruntime run call): min = ",
        "D2H Latency: n/a",
        "Total Host Walltime: ",
        "Total Compute Time: ",
    ):
        assert label in out, label
    latency = next(line for line in out.splitlines() if line.startswith("Latency:"))
    for part in (
        "max = ",
        "mean = ",
        "median = ",
        "percentile(90%)",
        "percentile(95%)",
        "percentile(99%)",
    ):
        assert part in latency


def test_json_and_export_times(tmp_path, capsys):
    model = make_cnn(tmp_path / "cnn.onnx")
    times = tmp_path / "times.json"
    assert main(["bench", str(model), *FAST, "--json", "--export-times", str(times)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert set(summary["latency_ms"]) == {"min", "max", "mean", "median", "p90", "p95", "p99"}
    assert summary["queries"] == 20 and summary["throughput_qps"] > 0
    assert summary["h2d_ms"] is None and summary["d2h_ms"] is None
    assert set(summary["compute_ms"]) == set(summary["latency_ms"])
    lat = summary["latency_ms"]
    assert lat["min"] <= lat["median"] <= lat["p90"] <= lat["p95"] <= lat["p99"] <= lat["max"]
    records = json.loads(times.read_text())
    assert len(records) == 20
    assert all(list(r) == list(EXPORT_FIELDS) for r in records)
    assert all(r["latencyMs"] == r["computeMs"] and r["h2dMs"] is None for r in records)
    assert (
        max(r["latencyMs"] for r in records) == lat["max"]
        or abs(max(r["latencyMs"] for r in records) - lat["max"]) < 1e-5
    )


def test_gpu_only_flags_are_refused_on_onnxruntime(tmp_path, capsys):
    model = make_cnn(tmp_path / "cnn.onnx")
    assert main(["bench", str(model), "--backend", "onnxruntime", "--streams", "2", *FAST]) == 1
    assert "--streams and --cuda-graph apply to TensorRT" in capsys.readouterr().err


def test_trtexec_settings_in_json(tmp_path, capsys):
    model = make_cnn(tmp_path / "cnn.onnx")
    assert main(["bench", str(model), "--backend", "onnxruntime", *FAST, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    # trtexec 11 is the default; on ONNX Runtime there are no transfers, graphs or spin-waits.
    assert summary["trtexec"] == 11
    assert (summary["data_transfers"], summary["cuda_graph"], summary["spin_wait"]) == (
        False,
        False,
        False,
    )
    assert summary["memory"] is None
    args = ["bench", str(model), "--backend", "onnxruntime", *FAST, "--json", "--trtexec", "10"]
    assert main([*args, "--no-data-transfers"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["trtexec"] == 10
    assert any("ONNX Runtime has no host-device copies" in n for n in summary["notes"])
