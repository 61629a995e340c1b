"""The console examples of docs/reliability.md, run as written (stderr and exit code)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import fuzz_harness
import onnx_models
import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"
#: ``$ trtimport …`` followed by the lines it prints, up to ``[exit code N]``.
EXAMPLE = re.compile(r"^\$ (trtimport [^\n]*)\n(.*?)^\[exit code (\d+)\]$", re.S | re.M)


def _examples() -> list[tuple[str, str, int]]:
    text = DOC.read_text()
    consoles = re.findall(r"```console\n(.*?)```", text, re.S)
    return [(c, out, int(code)) for block in consoles for c, out, code in EXAMPLE.findall(block)]


def test_reliability_md_has_examples() -> None:
    assert len(_examples()) >= 2, "reliability.md"


@pytest.mark.parametrize(("command", "output", "code"), _examples())
def test_reliability_md_examples(tmp_path: Path, command: str, output: str, code: int) -> None:
    onnx_models.save(onnx_models.conv_relu(), tmp_path / "model.onnx")
    before = (tmp_path / "model.onnx").read_bytes()
    done = subprocess.run(
        [sys.executable, "-m", "trtimport", *command.split()[1:]],
        cwd=tmp_path,
        env=fuzz_harness.child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == code
    assert done.stderr == output, done.stderr
    assert (tmp_path / "model.onnx").read_bytes() == before
