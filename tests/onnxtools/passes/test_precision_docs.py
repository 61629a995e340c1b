"""Every example in docs/precision.md runs."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import numpy as np
import onnx
import pytest
from precision_nets import lenet_from_caffe

REPO = Path(__file__).resolve().parents[3]
DOC = REPO / "docs" / "precision.md"
MNIST = REPO / "examples" / "mnist"


def _blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with lenet.onnx and calib.npz, as the doc describes."""
    pytest.importorskip("cv2")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("tensorrt_rtx")
    model = lenet_from_caffe(str(MNIST / "lenet.prototxt"), str(MNIST / "lenet.caffemodel"))
    onnx.save(model, str(tmp_path / "lenet.onnx"))
    with np.load(MNIST / "digits.npz", allow_pickle=False) as data:
        np.savez(tmp_path / "calib.npz", x=data["images"][:200, None].astype(np.float32) / 256)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_console_examples_run(workdir: Path, cli) -> None:  # type: ignore[no-untyped-def]
    commands = [
        line[2:]
        for block in _blocks("console")
        for line in block.splitlines()
        if line.startswith("$ ")
    ]
    assert len(commands) == 5
    outputs = []
    for command in commands:
        argv = shlex.split(command)
        assert argv[0] == "trtimport"
        proc = cli(*argv[1:], cwd=workdir)
        assert proc.returncode == 0, f"{command}\n{proc.stderr}"
        outputs.append(proc.stdout + proc.stderr)
    assert "reused the activation ranges" in outputs[2]
    assert (workdir / "lenet-int8.engine.calib.json").is_file()
    assert (workdir / "lenet-fp16.onnx").is_file()
    guard = json.loads((workdir / "lenet-guarded.engine.json").read_text())["rewrites"]
    assert guard["precision"]["error"] <= 1e-4 and len(guard["precision"]["keep_fp32"]) == 2


def test_python_example_runs(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (block,) = _blocks("python")
    exec(compile(block, str(DOC), "exec"), {})
    out = capsys.readouterr().out
    assert "layer(s) in INT8" in out and "--precision fp16" in out
    assert (workdir / "lenet-int8-fp16.engine").is_file()
