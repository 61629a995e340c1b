"""Saving a model with external data as one file: the bytes onnx.save gives, or one data file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx_models import conv_relu, save, with_external_weights

from trtimport.errors import ModelParseError
from trtimport.onnxtools.external_data import external_data_references
from trtimport.onnxtools.standalone import ALIGNMENT, standalone_onnx


def _external(tensor: TensorProto, location: str, offset: int, data: bytes) -> None:
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", str(offset)), ("length", str(len(data)))):
        tensor.external_data.add(key=key, value=value)


def _model_with_constant_and_subgraph(folder: Path) -> Path:
    """Weights outside in an initializer, a Constant's tensor and an If branch's Constant."""
    rng = np.random.default_rng(0)
    arrays = {
        "w": rng.standard_normal((2, 3)).astype(np.float32),
        "c": rng.standard_normal(3).astype(np.float32),
        "inner": rng.standard_normal(3).astype(np.float32),
    }
    blob = b"".join(a.tobytes() + b"\0" * 5 for a in arrays.values())  # unaligned offsets
    (folder / "weights").mkdir()
    (folder / "weights" / "all.bin").write_bytes(blob)
    tensors = {n: numpy_helper.from_array(a, n) for n, a in arrays.items()}
    offset = 0
    for name, array in arrays.items():
        _external(tensors[name], "weights/all.bin", offset, array.tobytes())
        offset += array.nbytes + 5
    branch = helper.make_graph(
        [helper.make_node("Constant", [], ["b"], value=tensors["inner"])],
        "branch",
        [],
        [helper.make_tensor_value_info("b", TensorProto.FLOAT, [3])],
    )
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["m"]),
        helper.make_node("Constant", [], ["k"], value=tensors["c"]),
        helper.make_node("If", ["cond"], ["i"], then_branch=branch, else_branch=branch),
        helper.make_node("Add", ["m", "k"], ["s"]),
        helper.make_node("Add", ["s", "i"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2]),
            helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
        initializer=[tensors["w"]],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.metadata_props.add(key="k", value="v")
    return save(model, folder / "model.onnx")


def _run(path: Path) -> np.ndarray:
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {"x": np.ones((1, 2), np.float32), "cond": np.array(True)}
    return np.asarray(session.run(None, feeds)[0])


def test_external_data_everywhere_is_taken_in(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    model = _model_with_constant_and_subgraph(tmp_path / "src")
    dest = tmp_path / "out" / "saved.onnx"
    with standalone_onnx(model, dest) as written:
        assert not dest.exists()  # moved into place when the block ends
    assert written == [dest] and sorted(p.name for p in dest.parent.iterdir()) == ["saved.onnx"]
    assert external_data_references(dest) == []
    loaded = onnx.load(str(model))  # with its external data
    for tensor in _all_tensors(loaded.graph):
        tensor.ClearField("external_data")
        tensor.ClearField("data_location")
    assert dest.read_bytes() == loaded.SerializeToString()
    np.testing.assert_array_equal(_run(dest), _run(model))


def _all_tensors(graph: onnx.GraphProto) -> list[TensorProto]:
    found = list(graph.initializer)
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                found.append(attr.t)
            if attr.HasField("g"):
                found += _all_tensors(attr.g)
    return found


def test_too_big_for_one_file_keeps_one_data_file(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    model = _model_with_constant_and_subgraph(tmp_path / "src")
    dest = tmp_path / "saved.onnx"
    with standalone_onnx(model, dest, max_inline_bytes=200) as written:
        pass
    data = tmp_path / "saved.onnx.data"
    assert written == [dest, data]
    assert {loc for _, loc in external_data_references(dest) or []} == {"saved.onnx.data"}
    loaded = onnx.load(str(dest))
    offsets = [
        int(next(e.value for e in t.external_data if e.key == "offset"))
        for t in _all_tensors(onnx.load(str(dest), load_external_data=False).graph)
    ]
    assert all(o % ALIGNMENT == 0 for o in offsets)
    np.testing.assert_array_equal(
        numpy_helper.to_array(loaded.graph.initializer[0]),
        numpy_helper.to_array(onnx.load(str(model)).graph.initializer[0]),
    )
    np.testing.assert_array_equal(_run(dest), _run(model))


def test_model_without_external_data_is_copied(tmp_path: Path) -> None:
    model = save(conv_relu(), tmp_path / "m.onnx")
    dest = tmp_path / "copy.onnx"
    with standalone_onnx(model, dest):
        pass
    assert dest.read_bytes() == model.read_bytes()


def test_data_past_the_end_of_its_file_fails_and_writes_nothing(tmp_path: Path) -> None:
    model = with_external_weights(tmp_path, "w.bin")
    data = tmp_path / "w.bin"
    data.write_bytes(data.read_bytes()[:-4])
    dest = tmp_path / "out" / "saved.onnx"
    with (
        pytest.raises(ModelParseError, match=r"tensor 'w'.*passes the end of"),
        standalone_onnx(model, dest),
    ):
        pass
    assert not dest.parent.exists()  # checked before anything is written


def test_error_in_the_block_leaves_nothing(tmp_path: Path) -> None:
    model = with_external_weights(tmp_path, "w.bin")
    dest = tmp_path / "saved.onnx"
    with pytest.raises(RuntimeError), standalone_onnx(model, dest):
        raise RuntimeError("the build failed")
    assert not dest.exists()
