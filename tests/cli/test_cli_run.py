"""``trtimport run``: the numbers onnxruntime gives, stats, top-k, saved outputs, images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from runtime_models import built_engine, make_cnn, make_identity, ort_outputs

from trtimport.cli import main

REPO = Path(__file__).resolve().parents[2]
MNIST = REPO / "examples" / "mnist"


def run_json(capsys, *args: str) -> dict:
    assert main(["run", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def cnn(tmp_path) -> Path:
    return make_cnn(tmp_path / "cnn.onnx")


def test_given_input_matches_onnxruntime(tmp_path, capsys, cnn):
    x = np.random.default_rng(4).random((1, 1, 28, 28)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    out = run_json(
        capsys, str(cnn), "--input", f"x={tmp_path / 'x.npy'}", "--backend", "onnxruntime"
    )
    expected = ort_outputs(cnn, {"x": x})["prob"]
    (prob,) = out["outputs"]
    assert prob["name"] == "prob" and prob["shape"] == [1, 10]
    assert prob["min"] == float(expected.min()) and prob["max"] == float(expected.max())
    assert prob["mean"] == pytest.approx(float(expected.astype(np.float64).mean()))
    assert prob["std"] == pytest.approx(float(expected.astype(np.float64).std()))
    ranked = list(np.argsort(-expected[0], kind="stable")[:5])
    assert [t["index"] for t in prob["top_k"]] == ranked
    assert prob["top_k"][0]["value"] == float(expected[0, ranked[0]])
    assert out["inputs"] == [
        {
            "name": "x",
            "shape": [1, 1, 28, 28],
            "dtype": "float32",
            "source": str(tmp_path / "x.npy"),
        }
    ]
    assert out["notes"] == []


def test_generated_input_is_seeded_and_noted(capsys, cnn):
    first = run_json(capsys, str(cnn), "--seed", "3")
    again = run_json(capsys, str(cnn), "--seed", "3")
    other = run_json(capsys, str(cnn), "--seed", "4")
    assert first["outputs"] == again["outputs"] != other["outputs"]
    assert "seed 3" in first["notes"][-1]
    x = np.random.default_rng(3).random((1, 1, 28, 28)).astype(np.float32)
    assert first["outputs"][0]["max"] == float(ort_outputs(cnn, {"x": x})["prob"].max())


def test_human_output_and_saved_outputs(tmp_path, capsys, cnn):
    dest = tmp_path / "out" / "result.npz"
    assert main(["run", str(cnn), "--top-k", "3", "--save-outputs", str(dest)]) == 0
    captured = capsys.readouterr()
    assert "prob  1x10  float32  min " in captured.out
    assert "top-3: " in captured.out and "x  1x1x28x28  float32  <- random (seed 0)" in captured.out
    assert "note: generated random input(s) x 1x1x28x28 with seed 0" in captured.err
    with np.load(dest) as saved:
        assert list(saved.keys()) == ["prob"] and saved["prob"].shape == (1, 10)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["result.npz"]


def test_image_normalisation_demo(tmp_path, capsys):
    cv2 = pytest.importorskip("cv2")
    model = make_identity(tmp_path / "identity.onnx", [1, 1, 28, 28])
    digit = MNIST / "digits" / "7.png"
    dest = tmp_path / "y.npz"
    args = ["--scale", "0.00392156862745098", "--mean", "0.5", "--std", "0.5"]
    code = main(
        ["run", str(model), "--input", f"x={digit}", *args, "--save-outputs", str(dest), "-q"]
    )
    assert code == 0
    pixels = cv2.imread(str(digit), cv2.IMREAD_GRAYSCALE).astype(np.float32)
    with np.load(dest) as saved:
        np.testing.assert_allclose(saved["y"][0, 0], (pixels / 255 - 0.5) / 0.5, atol=1e-6)


def test_bad_input_is_one_error(tmp_path, capsys, cnn):
    assert main(["run", str(cnn), "--input", f"x={tmp_path / 'none.npy'}"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "none.npy: no such input file" in err
    np.save(tmp_path / "x.npy", np.zeros((1, 1, 28, 28), np.float32))
    assert main(["run", str(cnn), "--input", f"data={tmp_path / 'x.npy'}"]) == 1
    err = capsys.readouterr().err
    assert "--input names 'data'" in err and "inputs are x" in err


def test_engine_without_gpu_is_one_error(capsys):
    from trtimport.core.backend import get_backend

    if get_backend().gpu_support_problem() is None:
        pytest.skip("a usable GPU is present")
    engine = built_engine()
    assert main(["run", str(engine)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: Running the engine") and "--backend onnxruntime" in err
    assert "Traceback" not in err


def test_caffe_lenet_names_the_digit(capsys):
    pytest.importorskip("trtimport.importers.caffe")
    out = run_json(
        capsys,
        str(MNIST / "lenet.caffemodel"),
        "--input",
        f"data={MNIST / 'digits' / '7.png'}",
        "--scale",
        "0.00390625",
        "--backend",
        "onnxruntime",
    )
    (prob,) = out["outputs"]
    assert prob["top_k"][0]["index"] == 7


def test_dynamic_batch_takes_the_file_shape(tmp_path, capsys):
    model = make_cnn(tmp_path / "dyn.onnx", batch="N")
    x = np.random.default_rng(8).random((3, 1, 28, 28)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    out = run_json(capsys, str(model), "--input", f"x={tmp_path / 'x.npy'}")
    (prob,) = out["outputs"]
    assert prob["shape"] == [3, 10] and "top_k" not in prob  # three rows: not one classifier row
    assert prob["max"] == float(ort_outputs(model, {"x": x})["prob"].max())
    batch_one = run_json(capsys, str(model))  # a dynamic batch alone becomes 1
    assert batch_one["inputs"][0]["shape"] == [1, 1, 28, 28]
    generated = run_json(capsys, str(model), "--input", "x:2x1x28x28")
    assert generated["inputs"][0]["shape"] == [2, 1, 28, 28]


def test_output_flag_selects_intermediate_tensors(capsys, cnn):
    out = run_json(capsys, str(cnn), "--output", "logits", "--output", "r1")
    assert [(o["name"], o["shape"]) for o in out["outputs"]] == [
        ("logits", [1, 10]),
        ("r1", [1, 4, 28, 28]),
    ]
    assert out["outputs"][1]["min"] >= 0  # a ReLU output
    assert main(["verify", str(cnn), "--candidate", str(cnn), "--output", "logits"]) == 0
    assert "logits  1x10" in capsys.readouterr().out
