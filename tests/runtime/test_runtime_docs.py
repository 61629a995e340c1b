"""Every ```python and ```console example in docs/runtime.md runs (in a scratch folder)."""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
from pathlib import Path

from conftest import run_cli

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "runtime.md"
BLOCK = re.compile(r"```(python|console)\n(.*?)```", re.S)
EXIT = re.compile(r"^\[exit code (\d+)\]$")


def console_commands(body: str) -> list[tuple[str, int]]:
    """(command, expected exit code) of each ``$`` line; ``[exit code N]`` right after sets N."""
    commands: list[tuple[str, int]] = []
    for line in body.splitlines():
        if line.startswith("$ "):
            commands.append((line[2:], 0))
        elif commands and (m := EXIT.match(line.strip())):
            commands[-1] = (commands[-1][0], int(m.group(1)))
    return commands


def test_doc_examples_run(tmp_path, monkeypatch):
    (tmp_path / "examples").symlink_to(REPO / "examples")
    monkeypatch.chdir(tmp_path)
    has_caffe = importlib.util.find_spec("trtimport.importers.caffe") is not None
    # The scratch folder is the working directory: make this checkout's sources win.
    path = os.pathsep.join(p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH")) if p)
    blocks = BLOCK.findall(DOC.read_text())
    assert sum(lang == "console" for lang, _ in blocks) >= 4
    ran = 0
    for lang, body in blocks:
        if lang == "python":
            exec(compile(body, str(DOC), "exec"), {"__name__": "docs_example"})
            continue
        for command, code in console_commands(body):
            if ".caffemodel" in command and not has_caffe:
                continue
            args = shlex.split(command)
            assert args[0] == "trtimport"
            result = run_cli(*args[1:], cwd=tmp_path, env={"PYTHONPATH": path})
            assert result.returncode == code, (command, result.stdout, result.stderr)
            ran += 1
    assert ran >= 4
    assert (tmp_path / "times.json").is_file()
