"""The wire-format walk finds the same external-data references as onnx.load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx_models import conv_relu, save, with_external_weights

from trtimport.onnxtools.external_data import external_data_references


def _make_external(tensor: TensorProto, location: str) -> None:
    tensor.ClearField("raw_data")
    tensor.ClearField("float_data")
    tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", location


def test_plain_model_has_no_references(tmp_path: Path) -> None:
    assert external_data_references(save(conv_relu(), tmp_path / "m.onnx")) == []


def test_initializer_reference(tmp_path: Path) -> None:
    model = with_external_weights(tmp_path, "weights/w.bin")
    assert external_data_references(model) == [("w", "weights/w.bin")]


def test_references_in_attributes_subgraphs_and_sparse_tensors(tmp_path: Path) -> None:
    value = numpy_helper.from_array(np.ones((2, 2), np.float32), "const_value")
    _make_external(value, "../in_constant.bin")
    inner_value = numpy_helper.from_array(np.ones(2, np.float32), "inner_value")
    _make_external(inner_value, "/abs/in_subgraph.bin")
    then_graph = helper.make_graph(
        [helper.make_node("Constant", [], ["t"], value=inner_value)],
        "then",
        [],
        [helper.make_tensor_value_info("t", TensorProto.FLOAT, [2])],
    )
    sparse_values = numpy_helper.from_array(np.ones(1, np.float32), "sparse_w")
    _make_external(sparse_values, "sparse.bin")
    sparse = helper.make_sparse_tensor(
        sparse_values, numpy_helper.from_array(np.array([0], np.int64), "idx"), [4]
    )
    nodes = [
        helper.make_node("Constant", [], ["c"], value=value),
        helper.make_node("If", ["cond"], ["o"], then_branch=then_graph, else_branch=then_graph),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("o", TensorProto.FLOAT, [2])],
        sparse_initializer=[sparse],
    )
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph), str(path))
    found = sorted(external_data_references(path) or [])
    assert found == sorted(
        [
            ("const_value", "../in_constant.bin"),
            ("inner_value", "/abs/in_subgraph.bin"),
            ("inner_value", "/abs/in_subgraph.bin"),
            ("sparse_w", "sparse.bin"),
        ]
    )


def test_corrupt_bytes_are_not_readable(tmp_path: Path) -> None:
    good = save(conv_relu(), tmp_path / "good.onnx").read_bytes()
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(good[:150])
    assert external_data_references(bad) is None
    bad.write_bytes(b"")
    assert external_data_references(bad) is None
