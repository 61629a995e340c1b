"""save_model_with_data: a model whose external tensors' bytes are held in memory, by location
(tf2onnx's large-model form), saved with one aligned data file beside it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from trtimport.errors import ModelParseError
from trtimport.onnxtools.external_data import external_data_references
from trtimport.onnxtools.graph import save_model_with_data
from trtimport.onnxtools.standalone import ALIGNMENT


def _external(tensor: TensorProto, location: str) -> bytes:
    """Make ``tensor`` external at ``location`` as tf2onnx does; returns the bytes moved out."""
    data = tensor.raw_data
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value=location)
    return data


def _model(a: np.ndarray, b: np.ndarray) -> tuple[object, dict[str, bytes]]:
    """y = (x + a) * b + c: ``a`` and ``b`` external, ``c`` (typed data, no raw bytes) too."""
    ta, tb = numpy_helper.from_array(a, "a"), numpy_helper.from_array(b, "b")
    tc = helper.make_tensor("c", TensorProto.FLOAT, [3], [1.0, 2.0, 3.0])  # float_data
    data = {"a_0": _external(ta, "a_0"), "b_1": _external(tb, "b_1")}
    data["c_2"] = _external(tc, "c_2")  # empty: tf2onnx moves only raw_data out
    nodes = [
        helper.make_node("Add", ["x", "a"], ["s"]),
        helper.make_node("Mul", ["s", "b"], ["m"]),
        helper.make_node("Add", ["m", "c"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])],
        initializer=[ta, tb, tc],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), data


def test_weights_go_to_one_aligned_file_and_are_dropped(tmp_path: Path) -> None:
    a, b = np.arange(3, dtype=np.float32), np.full(3, 2.0, np.float32)
    model, data = _model(a, b)
    dest = tmp_path / "m.onnx"
    save_model_with_data(model, data, dest)  # type: ignore[arg-type]
    assert data == {}  # every entry written, then let go
    assert sorted(external_data_references(dest) or []) == [
        ("a", "m.onnx.data"),
        ("b", "m.onnx.data"),
    ]
    tensor_b = model.graph.initializer[1]  # type: ignore[attr-defined]
    entry = {e.key: e.value for e in tensor_b.external_data}
    assert int(entry["offset"]) % ALIGNMENT == 0 and entry["length"] == "12"
    x = np.array([1.0, 1.0, 1.0], np.float32)
    session = ort.InferenceSession(str(dest), providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(session.run(None, {"x": x})[0], (x + a) * b + [1, 2, 3])


def test_a_tensor_without_data_is_an_error_and_nothing_is_written(tmp_path: Path) -> None:
    model, data = _model(np.zeros(3, np.float32), np.ones(3, np.float32))
    del data["b_1"]
    with pytest.raises(ModelParseError, match="tensor 'b' is stored externally at 'b_1'"):
        save_model_with_data(model, data, tmp_path / "m.onnx")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []
