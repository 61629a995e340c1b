"""The examples in docs/network-scripts.md run: python blocks in-process, console blocks as CLI."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import run_cli

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "network-scripts.md"
SRC_ENV = {"PYTHONPATH": str(REPO / "src")}


def _blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", DOC.read_text(), flags=re.S)


@pytest.mark.parametrize("code", _blocks("python"), ids=lambda c: c.splitlines()[0][:40])
def test_python_examples_run(code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each python block runs as written, in an empty folder."""
    pytest.importorskip("onnxruntime")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, str(DOC), "exec"), {"__name__": "__doc_example__"})


def _lenet_weights_available() -> bool:
    try:
        import trtimport.importers.caffe.parse  # noqa: F401
    except ImportError:
        return False
    return True


def _prepare(command: list[str], tmp_path: Path) -> list[str]:
    """model.onnx in a command is a small real model written for the test."""
    if "model.onnx" in command:
        import numpy as np
        import onnx
        from onnx import helper, numpy_helper

        w = numpy_helper.from_array(np.ones((4, 3), np.float32), "w")
        graph = helper.make_graph(
            [helper.make_node("MatMul", ["x", "w"], ["y"], name="matmul")],
            "g",
            [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 4])],
            [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2, 3])],
            [w],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        onnx.save(model, str(tmp_path / "model.onnx"))
    return command


@pytest.mark.parametrize("block", _blocks("console"), ids=lambda c: c.split()[2][:40])
def test_console_examples_run(block: str, tmp_path: Path) -> None:
    """Each console command exits 0 and writes the ONNX it names (examples/ linked in)."""
    (tmp_path / "examples").symlink_to(REPO / "examples")
    for line in block.strip().splitlines():
        command = shlex.split(line.removeprefix("$ "))
        assert command[0] == "trtimport"
        if any(a.endswith(".caffemodel") for a in command) and not _lenet_weights_available():
            pytest.skip("reading .caffemodel weights needs the Caffe importer")
        proc = run_cli(*_prepare(command, tmp_path)[1:], cwd=tmp_path, env=SRC_ENV)
        assert proc.returncode == 0, proc.stderr
        out = command[command.index("--save-network-onnx") + 1]
        assert (tmp_path / out).is_file()
