"""docs/caffe.md: the layer table matches the registry, and every example runs."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from trtimport.importers.caffe.registry import build_registry
from trtimport.plugins.manager import load_plugins

REPO = Path(__file__).resolve().parents[3]
DOC = REPO / "docs" / "caffe.md"
FENCE = re.compile(r"^( *)```(\w+)\n(.*?)^\1```", re.MULTILINE | re.DOTALL)


def blocks(kind: str) -> list[str]:
    """The fenced blocks of one language, dedented."""
    found = []
    for indent, lang, body in FENCE.findall(DOC.read_text()):
        if lang == kind:
            found.append("".join(line[len(indent) :] + "\n" for line in body.splitlines()))
    return found


def test_layer_table_matches_the_registry() -> None:
    rows = re.findall(r"^\| `([A-Za-z0-9]+)` \| ([^|]+) \| ([^|]+) \|$", DOC.read_text(), re.M)
    documented = [name for name, _, _ in rows]
    assert len(documented) == len(set(documented))
    assert sorted(documented) == build_registry(load_plugins()).types()
    for name, mapping, tested in rows:
        assert mapping.strip() and set(tested.strip().split(", ")) <= {"numpy", "OpenCV"}, name


@pytest.mark.parametrize("code", blocks("python"), ids=lambda c: c.splitlines()[-1][:40])
def test_python_examples_run(code: str) -> None:
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_console_examples_run(tmp_path, cli) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "examples").symlink_to(REPO / "examples")
    (tmp_path / "tests").symlink_to(REPO / "tests")
    commands = [
        line[2:]
        for block in blocks("console")
        for line in block.splitlines()
        if line.startswith("$ ")
    ]
    assert len(commands) >= 6
    for command in commands:
        args = shlex.split(command)
        assert args[0] == "trtimport"
        done = cli(*args[1:], cwd=tmp_path)
        assert done.returncode == 0, (command, done.stderr)
    for engine in ("ssd384.engine", "lenet-ip1.engine", "lenet-trainval.engine", "zf-rpn.engine"):
        assert (tmp_path / engine).is_file(), engine
