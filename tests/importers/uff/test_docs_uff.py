"""docs/uff.md: the op table matches the handlers and its "tested by" claims hold; every
example runs."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from trtimport.importers.uff.model import load_uff
from trtimport.importers.uff.ops import handlers

from .test_uff_ops import CASES
from .uff_files import graphdef_to_uff

REPO = Path(__file__).resolve().parents[3]
DOC = REPO / "docs" / "uff.md"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)
ROW = re.compile(r"^\| `([A-Za-z0-9_]+)` \| ([^|]+) \| ([^|]+) \|$", re.MULTILINE)
SAME = re.compile(r"same handler as `([A-Za-z0-9_]+)`")


def blocks(kind: str) -> list[str]:
    """The fenced blocks of one language in docs/uff.md ("uff.md")."""
    return [body for lang, body in FENCE.findall(DOC.read_text()) if lang == kind]


def rows() -> dict[str, list[str]]:
    """Op -> what tests it, from the op table."""
    return {
        op: [t.strip() for t in tested.split(",")] for op, _, tested in ROW.findall(DOC.read_text())
    }


def test_op_table_lists_every_handler() -> None:
    found = ROW.findall(DOC.read_text())
    assert len(found) == len({op for op, _, _ in found})
    assert sorted(op for op, _, _ in found) == sorted(handlers())


def test_tested_by_names_real_tests_and_files(shared_uff: Path) -> None:
    known = handlers()
    table = rows()
    for op, tested in table.items():
        for claim in tested:
            same = SAME.fullmatch(claim)
            if same:
                assert known[op] is known[same.group(1)], op
                assert not SAME.match(table[same.group(1)][0]), op
            elif claim.endswith(".uff"):
                ops = {n.op for n in load_uff(shared_uff / claim).nodes.values()}
                assert op in ops, f"{claim} has no {op}"
            else:
                assert claim in CASES, f"{op}: no test case '{claim}'"


@pytest.mark.tf
def test_test_cases_contain_the_ops_they_are_cited_for(tf: Any) -> None:
    written = {}
    for name, build in CASES.items():
        case = build(tf)
        writer = graphdef_to_uff(case.graph.as_graph_def(), case.outputs)
        written[name] = {n.operation for n in writer.nodes}
    for op, tested in rows().items():
        for claim in tested:
            if claim in written:
                assert op in written[claim], f"test case {claim} writes no {op}"


@pytest.mark.parametrize("code", blocks("python"), ids=lambda c: c.splitlines()[-1][:40])
def test_python_examples_run(shared_uff: Path, code: str) -> None:
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.tf
def test_console_examples_run(shared_uff: Path, tmp_path: Path, cli: Any) -> None:
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "models").mkdir()
    (tmp_path / "shared" / "models" / "uff").symlink_to(shared_uff)
    commands = [
        line[2:]
        for block in blocks("console")
        for line in block.splitlines()
        if line.startswith("$ ")
    ]
    assert len(commands) == 4
    for command in commands:
        args = shlex.split(command)
        assert args[0] == "trtimport"
        done = cli(*args[1:], cwd=tmp_path)
        assert done.returncode == 0, (command, done.stderr)
        if args[1] == "verify":
            assert "RESULT: PASS" in done.stdout
    for made in ("mnist.engine", "mnist.onnx", "features.onnx", "allcnn.engine"):
        assert (tmp_path / made).is_file(), made
