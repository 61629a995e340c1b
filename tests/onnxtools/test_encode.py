"""The ONNX encoder gives the bytes onnx.helper and SerializeToString give."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from trtimport.onnxtools import encode


@pytest.mark.parametrize(
    "value",
    [
        3,
        -1,
        True,
        np.int64(-7),
        2.5,
        -0.1,
        np.float32(1e-5),
        "NOTSET",
        b"raw",
        [1, -2, 3],
        (0, 1),
        [1.0, 2, 0.25],
        ["a", "bc"],
        np.array([1, 2], np.int64),
    ],
)
def test_attribute_matches_onnx(value: Any) -> None:
    expected = helper.make_attribute("attr", value).SerializeToString()
    assert encode.attribute("attr", value) == expected


def test_attribute_of_other_kinds_goes_through_onnx() -> None:
    tensor = helper.make_tensor("v", TensorProto.FLOAT, [1], [0.5])
    assert (
        encode.attribute("value", tensor)
        == helper.make_attribute("value", tensor).SerializeToString()
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"name": "conv1"},
        {"name": "", "domain": ""},
        {"name": "n", "domain": "com.example", "doc_string": "d"},
        {"name": "pool", "kernel_shape": [2, 2], "strides": [2, 2], "auto_pad": "NOTSET"},
        {"name": "gemm", "transB": 1, "alpha": 0.5, "beta": None},
    ],
)
def test_node_matches_onnx(kwargs: dict[str, Any]) -> None:
    expected = helper.make_node("Op", ["a", "b"], ["c"], **kwargs).SerializeToString()
    assert encode.node("Op", ["a", "b"], ["c"], **kwargs) == expected


@pytest.mark.parametrize("shape", [None, [], [1, 3, 224, 224], [1, "N", None]])
def test_value_info_matches_onnx(shape: list[Any] | None) -> None:
    expected = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape).SerializeToString()
    assert encode.value_info("x", TensorProto.FLOAT, shape) == expected


def test_graph_matches_onnx() -> None:
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="relu")]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])]
    expected = helper.make_graph(nodes, "g", inputs, outputs).SerializeToString()
    serialized = [[m.SerializeToString() for m in part] for part in (nodes, inputs, outputs)]
    assert encode.graph(serialized[0], "g", serialized[1], serialized[2]) == expected
    assert encode.graph([], "", [], []) == helper.make_graph([], "", [], []).SerializeToString()


@pytest.mark.parametrize(
    "dtype",
    [
        np.float32,
        np.float16,
        np.float64,
        np.int8,
        np.uint8,
        np.int32,
        np.int64,
        np.uint64,
        np.bool_,
    ],
)
def test_tensor_header_and_data_types_match_onnx(dtype: type) -> None:
    data_type = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    assert encode.data_type(dtype) == data_type
    expected = TensorProto(name="w", dims=[4, 0, 3], data_type=data_type).SerializeToString()
    assert encode.tensor_header("w", (4, 0, 3), data_type) == expected


def test_external_data_matches_onnx() -> None:
    tensor = TensorProto(name="w", dims=[2], data_type=1)
    for key, value in (("location", "m.data"), ("offset", "4096"), ("length", "8")):
        tensor.external_data.add(key=key, value=value)
    tensor.data_location = TensorProto.EXTERNAL
    expected = tensor.SerializeToString()
    assert encode.tensor_header("w", [2], 1) + encode.external_data("m.data", 4096, 8) == expected


@pytest.mark.parametrize("opset", range(1, 24))
def test_min_ir_version_matches_onnx(opset: int) -> None:
    expected = helper.find_min_ir_version_for([helper.make_opsetid("", opset)], True)
    assert encode.min_ir_version({"": opset}) == expected
    assert encode.min_ir_version({"": opset, "ai.onnx.ml": 3}) is None


def test_model_header_matches_onnx() -> None:
    model = onnx.ModelProto(
        ir_version=8,
        producer_name="trtimport",
        producer_version="1.0",
        doc_string="doc",
        opset_import=[helper.make_opsetid("", 17), helper.make_opsetid("com.x", 1)],
    )
    model.metadata_props.add(key="k", value="v")
    model.graph.CopyFrom(helper.make_graph([], "g", [], []))
    before, after = encode.model_header(
        {"": 17, "com.x": 1},
        "trtimport",
        producer_version="1.0",
        ir_version=8,
        doc_string="doc",
        metadata={"k": "v"},
    )
    graph = model.graph.SerializeToString()
    assert before + b"\x3a" + bytes([len(graph)]) + graph + after == model.SerializeToString()
