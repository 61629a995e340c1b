"""``trtimport verify``: the table, --layerwise, --json and the exit code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from runtime_models import cnn_weights, make_cnn

from trtimport.cli import main

REPO = Path(__file__).resolve().parents[2]
MNIST = REPO / "examples" / "mnist"


def corrupted(path: Path) -> Path:
    weights = cnn_weights()
    weights["conv2.w"] = weights["conv2.w"].copy()
    weights["conv2.w"].flat[5] += 3.0
    return make_cnn(path, weights)


def test_corrupted_candidate_fails_with_first_layer(tmp_path, capsys):
    model = make_cnn(tmp_path / "cnn.onnx")
    edited = corrupted(tmp_path / "edited.onnx")
    assert main(["verify", str(model), "--candidate", str(edited), "--layerwise"]) == 1
    out = capsys.readouterr().out
    assert "candidate: edited.onnx on onnxruntime" in out
    assert "prob" in out and "FAIL" in out and "RESULT: FAIL" in out
    assert "first divergence at tensor 'c2' (layer conv2, Conv), 4 of 8 compared" in out


def test_json_and_pass(tmp_path, capsys):
    model = make_cnn(tmp_path / "cnn.onnx")
    copy = make_cnn(tmp_path / "copy.onnx")
    assert main(["verify", str(model), "--candidate", str(copy), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] is True
    assert report["tolerance"] == {"atol": 1e-4, "rtol": 1e-3}
    (cand,) = report["candidates"]
    assert cand["outputs"][0]["max_abs"] == 0.0 and cand["outputs"][0]["passed"]
    assert main(["verify", str(model), "--candidate", str(copy)]) == 0
    assert "RESULT: PASS" in capsys.readouterr().out


def test_caffe_lenet_against_opencv(capsys):
    pytest.importorskip("trtimport.importers.caffe")
    code = main(
        [
            "verify",
            str(MNIST / "lenet.caffemodel"),
            "--input",
            f"data={MNIST / 'digits' / '7.png'}",
            "--scale",
            "0.00390625",
            "--backend",
            "onnxruntime",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "RESULT: PASS" in out
