"""Small ONNX models written by tests: dynamic inputs, external data, corrupt files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def conv_relu(dims: list[int | str] | None = None) -> onnx.ModelProto:
    """x[N,3,8,8] -> Conv(4 filters) -> c -> Relu -> y; ``dims`` overrides x's shape."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, dims or [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
        helper.make_node("Relu", ["c"], ["y"], name="relu"),
    ]
    graph = helper.make_graph(nodes, "conv_relu", [x], [y], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def save(model: onnx.ModelProto, path: Path) -> Path:
    """Write ``model`` to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def with_external_weights(folder: Path, location: str, write_data: bool = True) -> Path:
    """``folder/model.onnx`` whose weight ``w`` lives in the external file ``location``."""
    model = conv_relu()
    w = model.graph.initializer[0]
    data = numpy_helper.to_array(w).tobytes()
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(len(data)))):
        entry = w.external_data.add()
        entry.key, entry.value = key, value
    if write_data:
        target = Path(location) if Path(location).is_absolute() else folder / location
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return save(model, folder / "model.onnx")


def if_selected_by_input() -> onnx.ModelProto:
    """x[1,4], mode (int64 scalar) -> If(mode == 1) -> (y, z): two outputs per branch.

    then: y = relu(x), z = x * 2; else: y = sigmoid(x), z = x + 1. Like a voice-activity
    detector whose sample rate selects a branch.
    """

    def branch(name: str, first: str, second: str, const: float) -> onnx.GraphProto:
        k = numpy_helper.from_array(np.array(const, np.float32), f"{name}_k")
        return helper.make_graph(
            [
                helper.make_node(first, ["x"], [f"{name}_y"]),
                helper.make_node(second, ["x", f"{name}_k"], [f"{name}_z"]),
            ],
            name,
            [],
            [
                helper.make_tensor_value_info(f"{name}_y", TensorProto.FLOAT, [1, 4]),
                helper.make_tensor_value_info(f"{name}_z", TensorProto.FLOAT, [1, 4]),
            ],
            [k],
        )

    one = numpy_helper.from_array(np.array(1, np.int64), "one")
    nodes = [
        helper.make_node("Equal", ["mode", "one"], ["cond"]),
        helper.make_node(
            "If",
            ["cond"],
            ["y", "z"],
            then_branch=branch("then", "Relu", "Mul", 2.0),
            else_branch=branch("else", "Sigmoid", "Add", 1.0),
        ),
    ]
    graph = helper.make_graph(
        nodes,
        "if_mode",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4]),
            helper.make_tensor_value_info("mode", TensorProto.INT64, []),
        ],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4]),
            helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 4]),
        ],
        [one],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def ort_fused(folder: Path) -> Path:
    """A Conv+Relu, Erf-GELU, transposed-MatMul graph as ONNX Runtime's optimizer saves it.

    ONNX Runtime (extended level) fuses them into ``com.microsoft`` FusedConv, Gelu and
    FusedMatMul, which TensorRT's parser does not know. Returns the optimized file.
    """
    import onnxruntime

    rng = np.random.default_rng(0)

    def const(name: str, value: object) -> onnx.TensorProto:
        return numpy_helper.from_array(np.asarray(value, np.float32), name)

    inits = [
        const("W", rng.standard_normal((8, 3, 3, 3)) * 0.2),
        const("B", rng.standard_normal(8)),
        const("M", rng.standard_normal((6, 6))),
        const("half", 0.5),
        const("one", 1.0),
        const("sqrt2", np.sqrt(2.0)),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "W", "B"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Div", ["r", "sqrt2"], ["d"]),
        helper.make_node("Erf", ["d"], ["e"]),
        helper.make_node("Add", ["e", "one"], ["e1"]),
        helper.make_node("Mul", ["r", "e1"], ["m"]),
        helper.make_node("Mul", ["m", "half"], ["g"]),
        helper.make_node("Transpose", ["g"], ["gt"], perm=[0, 1, 3, 2]),
        helper.make_node("MatMul", ["gt", "M"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "fusable",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 6, 6])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    plain = save(model, folder / "plain.onnx")
    fused = folder / "ort_fused.onnx"
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(fused)
    onnxruntime.InferenceSession(str(plain), options, providers=["CPUExecutionProvider"])
    return fused


def _model(nodes: list[onnx.NodeProto], inputs: list, outputs: list, inits=()) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "generated", inputs, outputs, list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _vi(name: str, elem: int, dims: list[int | str] | None) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, dims)


def if_rank_differs() -> onnx.ModelProto:
    """x[1,4], flag (bool scalar) -> If: then x, else x flattened to rank 1.

    TensorRT cannot tell the output's rank ("Could not get tensor shape").
    """
    shape = numpy_helper.from_array(np.array([4], np.int64), "flat")
    then = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["t"])],
        "then",
        [],
        [_vi("t", TensorProto.FLOAT, [1, 4])],
    )
    other = helper.make_graph(
        [helper.make_node("Reshape", ["x", "flat"], ["e"])],
        "else",
        [],
        [_vi("e", TensorProto.FLOAT, [4])],
    )
    node = helper.make_node("If", ["flag"], ["y"], then_branch=then, else_branch=other)
    return _model(
        [node],
        [_vi("x", TensorProto.FLOAT, [1, 4]), _vi("flag", TensorProto.BOOL, [])],
        [_vi("y", TensorProto.FLOAT, None)],
        [shape],
    )


def loop_sum() -> onnx.ModelProto:
    """x[1,4], trips (int64 scalar) -> Loop adding 1 to x ``trips`` times -> y."""
    one = numpy_helper.from_array(np.array(1.0, np.float32), "one")
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Add", ["acc_in", "one"], ["acc_out"]),
        ],
        "body",
        [
            _vi("i", TensorProto.INT64, []),
            _vi("cond_in", TensorProto.BOOL, []),
            _vi("acc_in", TensorProto.FLOAT, [1, 4]),
        ],
        [_vi("cond_out", TensorProto.BOOL, []), _vi("acc_out", TensorProto.FLOAT, [1, 4])],
    )
    true = numpy_helper.from_array(np.array(True), "true")
    node = helper.make_node("Loop", ["trips", "true", "x"], ["y"], body=body)
    return _model(
        [node],
        [_vi("x", TensorProto.FLOAT, [1, 4]), _vi("trips", TensorProto.INT64, [])],
        [_vi("y", TensorProto.FLOAT, [1, 4])],
        [one, true],
    )


def nonzero() -> onnx.ModelProto:
    """x[2,3] -> NonZero -> y int64[2, -1]: a data-dependent output shape."""
    return _model(
        [helper.make_node("NonZero", ["x"], ["y"])],
        [_vi("x", TensorProto.FLOAT, [2, 3])],
        [_vi("y", TensorProto.INT64, [2, "found"])],
    )


def non_max_suppression() -> onnx.ModelProto:
    """boxes[1,6,4], scores[1,1,6] -> NonMaxSuppression -> selected int64[-1, 3]."""
    limits = [
        numpy_helper.from_array(np.array([3], np.int64), "max_out"),
        numpy_helper.from_array(np.array([0.5], np.float32), "iou"),
        numpy_helper.from_array(np.array([0.1], np.float32), "score"),
    ]
    node = helper.make_node(
        "NonMaxSuppression", ["boxes", "scores", "max_out", "iou", "score"], ["selected"]
    )
    return _model(
        [node],
        [_vi("boxes", TensorProto.FLOAT, [1, 6, 4]), _vi("scores", TensorProto.FLOAT, [1, 1, 6])],
        [_vi("selected", TensorProto.INT64, ["n", 3])],
        limits,
    )


def data_dependent_reshape() -> onnx.ModelProto:
    """x[6] -> Reshape(x, [count of x > 0, -1]): the target shape comes from the data."""
    zero = numpy_helper.from_array(np.array(0.0, np.float32), "zero")
    minus = numpy_helper.from_array(np.array([-1], np.int64), "minus_one")
    nodes = [
        helper.make_node("Greater", ["x", "zero"], ["positive"]),
        helper.make_node("Cast", ["positive"], ["ones"], to=TensorProto.INT64),
        helper.make_node("ReduceSum", ["ones"], ["count"], keepdims=1),
        helper.make_node("Concat", ["count", "minus_one"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["y"]),
    ]
    return _model(
        nodes,
        [_vi("x", TensorProto.FLOAT, [6])],
        [_vi("y", TensorProto.FLOAT, None)],
        [zero, minus],
    )
