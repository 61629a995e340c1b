"""The examples in docs/tensorflow.md run."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from .tf_models import REQUIRES_TF

pytestmark = [
    pytest.mark.tf,
    REQUIRES_TF,
    # Keras 3.15 converts TensorFlow tensors with np.array(x, copy=False) internally.
    pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning"),
]

DOC = Path(__file__).resolve().parents[3] / "docs" / "tensorflow.md"


def blocks(language: str) -> list[str]:
    """The fenced code blocks of ``language`` in the document."""
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def test_doc_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    python, console = blocks("python"), blocks("console")
    assert python and console
    for code in python:
        exec(compile(code, str(DOC), "exec"), {"__name__": "__doc_example__"})
    assert (tmp_path / "tiny.engine").is_file() and (tmp_path / "tiny.onnx").is_file()
    src = str(Path(__file__).resolve().parents[3] / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    for line in (x for block in console for x in block.splitlines()):
        if not line.startswith("$ trtimport"):
            continue
        args = shlex.split(line[2:])[1:]
        result = subprocess.run(
            [sys.executable, "-m", "trtimport", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        assert result.returncode == 0, f"{line}\n{result.stderr}"
    import onnx

    model = onnx.load(str(tmp_path / "tiny_nchw.onnx"))
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims[1:] == [3, 64, 64]
