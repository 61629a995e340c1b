"""Bad input through the CLI: exit code 1, one readable message, no traceback, no files left."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from onnx_models import conv_relu, save, with_external_weights

pytest.importorskip("tensorrt_rtx")


def _fails_cleanly(cli, args: list[str], out: Path, expect: str, env=None) -> str:
    """Run the CLI, check the failure contract, return stderr."""
    engine = out / "model.engine"
    proc = cli(*args, "-o", str(engine), "--save-onnx", str(out / "saved.onnx"), cwd=out, env=env)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert expect in proc.stderr, proc.stderr
    left = sorted(p.name for p in out.iterdir() if p.name not in ("model.onnx", "w.bin"))
    assert left == [], f"files left behind: {left}"
    return proc.stderr


@pytest.fixture
def out(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


def test_truncated_onnx(cli, out: Path, tmp_path: Path) -> None:
    good = save(conv_relu(), tmp_path / "good.onnx")
    bad = out / "model.onnx"
    bad.write_bytes(good.read_bytes()[:150])
    _fails_cleanly(cli, [str(bad)], out, "not a valid ONNX model")


def test_corrupt_onnx_with_explicit_format(cli, out: Path) -> None:
    bad = out / "model.onnx"
    bad.write_bytes(b"\x08\x07\x12" + os.urandom(300))
    _fails_cleanly(cli, [str(bad), "--format", "onnx"], out, "truncated or corrupt")


def test_missing_external_data(cli, out: Path) -> None:
    model = with_external_weights(out, "w.bin", write_data=False)
    _fails_cleanly(cli, [str(model)], out, "external data file 'w.bin' is missing")


@pytest.mark.parametrize("kind", ["parent", "absolute", "symlink"])
def test_external_data_outside_the_model_folder(cli, out: Path, tmp_path: Path, kind: str) -> None:
    secret = tmp_path / "secret.bin"
    if kind == "parent":
        model = with_external_weights(out, "../secret.bin")
    elif kind == "absolute":
        model = with_external_weights(out, str(secret))
    else:
        model = with_external_weights(out, "w.bin")
        os.replace(out / "w.bin", secret)
        (out / "w.bin").symlink_to(secret)
    assert secret.is_file()
    _fails_cleanly(cli, [str(model)], out, "outside the model's folder")


def test_unknown_output_name(cli, out: Path) -> None:
    model = save(conv_relu(), out / "model.onnx")
    stderr = _fails_cleanly(cli, [str(model), "--output", "nope"], out, "no tensor named 'nope'")
    assert "Available tensors: x, c, y" in stderr


def test_dynamic_input_without_shapes(cli, out: Path) -> None:
    model = save(conv_relu(["batch", 3, "height", 8]), out / "model.onnx")
    stderr = _fails_cleanly(cli, [str(model)], out, "'x' [-1, 3, -1, 8]: dimension(s) 2")
    assert "--input x:1x3xD2x8" in stderr
    assert "--shapes NAME:MIN/OPT/MAX" in stderr


def test_zero_builder_threads(cli, out: Path) -> None:
    model = save(conv_relu(), out / "model.onnx")
    _fails_cleanly(cli, [str(model), "--builder-threads", "0"], out, "give 1 or more threads")


def test_unknown_format(cli, out: Path) -> None:
    model = out / "model.onnx"
    model.write_bytes(b"this is not a model at all")
    model.rename(out / "model.xyz")
    (out / "model.xyz").rename(model)  # keep the name the checker ignores
    _fails_cleanly(cli, [str(model), "--format", "mxnet"], out, "unknown format 'mxnet'")


def test_undetectable_file(cli, out: Path) -> None:
    model = out / "model.onnx"
    save(conv_relu(), model)
    renamed = out / "w.bin"  # a name the checker ignores, with content nobody claims
    renamed.write_bytes(b"plain text, no model")
    model.unlink()
    _fails_cleanly(cli, [str(renamed)], out, "cannot tell this file's model format")


def _broken_distribution(root: Path) -> Path:
    """A real installed distribution (dist-info on PYTHONPATH) whose plugin raises on import."""
    site = root / "site"
    dist = site / "trtimport_broken-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: trtimport-broken\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[trtimport]\nbroken = trtimport_broken_plugin\n")
    (site / "trtimport_broken_plugin.py").write_text(
        "raise ImportError(\"No module named 'caffe_extras'\")\n"
    )
    return site


def test_broken_allowlisted_plugin(cli, out: Path, tmp_path: Path) -> None:
    model = save(conv_relu(), out / "model.onnx")
    site = _broken_distribution(tmp_path)
    env = {
        "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
        "TRTIMPORT_PLUGINS": "trtimport-broken",
    }
    stderr = _fails_cleanly(
        cli, [str(model)], out, "plugin 'broken' from distribution 'trtimport-broken'", env=env
    )
    assert "caffe_extras" in stderr


def test_broken_autoloaded_plugin_is_a_warning(cli, out: Path, tmp_path: Path) -> None:
    model = save(conv_relu(), out / "model.onnx")
    site = _broken_distribution(tmp_path)
    env = {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    proc = cli(str(model), "-o", str(out / "model.engine"), "-q", cwd=out, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "warning: plugin 'broken' from distribution 'trtimport-broken'" in proc.stderr
    assert (out / "model.engine").is_file()
