"""The real UFF files in ../shared/models/uff: every one converts and builds an engine; the ones
with the TensorFlow graph they came from match TensorFlow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from trtimport import BuildOptions, ImportOptions, convert
from trtimport.errors import OutputMarkingError, UsageError
from trtimport.importers.uff.convert import uff_to_onnx
from trtimport.importers.uff.model import load_uff

from .test_uff_ops import TOLERANCE, relative_error, run_onnx

#: Every shared UFF: (file, --input shapes it needs, its outputs and their shapes).
FILES: dict[str, tuple[dict[str, tuple[int, ...]], dict[str, tuple[int, ...]]]] = {
    "xuansan915-mnist/model.uff": ({}, {"dense_1/Softmax": (1, 10)}),
    "xuansan915-mnist/dot.uff": ({}, {"dense_1/Softmax": (1, 10)}),
    "ppo-hil/model.uff": ({}, {"policy/output": (1, 2)}),
    "combustionml-mayer/mayer.uff": ({}, {"dense_2/BiasAdd": (1, 4)}),
    "cgarciae-allcnn/all_cnn.uff": ({"input_layer_1": (1, 28, 28, 1)}, {"AllCNN/Softmax": (1, 10)}),
    "cgarciae-allcnn/test.uff": ({"input_image": (1, 28, 28, 1)}, {"AllCNN/Softmax": (1, 10)}),
    "csvance-keras-jetson/graph.uff": (
        {"input_1": (1, 30, 40, 1), "input_2": (1, 30, 40, 1)},
        {"dense_1/BiasAdd": (1, 1)},
    ),
}
#: UFF -> (the frozen graph it was converted from, input, batch of the comparison).
TWINS = {
    "xuansan915-mnist/model.uff": ("xuansan915-mnist/model.pb", "input_1", (3, 28, 28, 1)),
    "xuansan915-mnist/dot.uff": ("xuansan915-mnist/model.pb", "input_1", (3, 28, 28, 1)),
    "ppo-hil/model.uff": ("ppo-hil/model.pb", "input_state_placeholder", (3, 67)),
    "combustionml-mayer/mayer.uff": ("combustionml-mayer/mayer.pb", "input_1", (3, 2)),
}


def test_every_shared_uff_is_listed(shared_uff: Path) -> None:
    assert sorted(str(p.relative_to(shared_uff)) for p in shared_uff.rglob("*.uff")) == sorted(
        FILES
    )


@pytest.mark.parametrize("name", list(FILES))
def test_shared_uff_converts_and_builds(shared_uff: Path, tmp_path: Path, name: str) -> None:
    shapes, outputs = FILES[name]
    onnx_path = tmp_path / "model.onnx"
    result = convert(
        shared_uff / name,
        tmp_path / "model.engine",
        import_options=ImportOptions(input_shapes=shapes),
        build_options=BuildOptions(progress=False),
        save_onnx_to=onnx_path,
    )
    assert result.format == "uff" and result.engine_bytes > 0
    assert {o.name: o.shape for o in result.outputs} == outputs
    feeds = {i.name: np.ones(i.shape, np.float32) for i in result.inputs}
    values = run_onnx(onnx_path, feeds)
    assert all(np.isfinite(v).all() for v in values.values())


def _tf_run(tf: Any, graph_def: Any, feeds: dict[str, np.ndarray], output: str) -> np.ndarray:
    graph = tf.Graph()
    with graph.as_default():
        tf.import_graph_def(graph_def, name="")
    with tf.compat.v1.Session(graph=graph) as session:
        return session.run(f"{output}:0", {f"{k}:0": v for k, v in feeds.items()})


def _read_graph(tf: Any, path: Path) -> Any:
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(path.read_bytes())
    return graph_def


def _convert_to_onnx(path: Path, dest: Path, shapes: dict[str, tuple[int, ...]]) -> Path:
    from trtimport.importers.uff.context import Request

    uff_to_onnx(load_uff(path), dest, Request(input_shapes=shapes))
    return dest


@pytest.mark.tf
@pytest.mark.parametrize("name", list(TWINS))
def test_twin_matches_tensorflow(tf: Any, shared_uff: Path, tmp_path: Path, name: str) -> None:
    graph, input_name, shape = TWINS[name]
    (output,) = FILES[name][1]
    x = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    onnx_path = _convert_to_onnx(shared_uff / name, tmp_path / "m.onnx", {input_name: shape})
    actual = run_onnx(onnx_path, {input_name: x})[output]
    expected = _tf_run(tf, _read_graph(tf, shared_uff / graph), {input_name: x}, output)
    error = relative_error(actual, expected)
    print(f"{name}: max relative error {error:.1e}")
    assert error <= TOLERANCE


@pytest.mark.tf
@pytest.mark.parametrize("name", ["all_cnn.uff", "test.uff"])
def test_allcnn_matches_tensorflow_with_the_uff_weights(
    tf: Any, shared_uff: Path, tmp_path: Path, name: str
) -> None:
    """all_cnn3.pb has the UFF's nodes but another training run's weights: load the UFF's."""
    from trtimport.importers.uff.ops.tensor import const_array

    folder = shared_uff / "cgarciae-allcnn"
    model = load_uff(folder / name)
    weights = {n.name: const_array(n) for n in model.nodes.values() if n.op == "Const"}
    graph_def = _read_graph(tf, folder / "all_cnn3.pb")
    replaced = 0
    for node in graph_def.node:
        if node.name in weights:
            node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(weights[node.name]))
            replaced += 1
    assert replaced == len(weights) == 8  # 4 kernels, 4 biases
    (uff_input,) = [n.name for n in model.nodes.values() if n.op == "Input"]
    x = np.random.default_rng(4).random((3, 28, 28, 1)).astype(np.float32)
    onnx_path = _convert_to_onnx(folder / name, tmp_path / "m.onnx", {uff_input: x.shape})
    actual = run_onnx(onnx_path, {uff_input: x})["AllCNN/Softmax"]
    expected = _tf_run(tf, graph_def, {"input_layer_1": x}, "AllCNN/Softmax")
    error = relative_error(actual, expected)
    print(f"{name}: max relative error {error:.1e}")
    assert error <= TOLERANCE


def test_dot_uff_gives_the_same_result_as_model_uff(shared_uff: Path, tmp_path: Path) -> None:
    """dot.uff is model.uff's graph with its map entries in another order."""
    folder = shared_uff / "xuansan915-mnist"
    assert (folder / "dot.uff").read_bytes() != (folder / "model.uff").read_bytes()
    x = np.random.default_rng(5).random((2, 28, 28, 1)).astype(np.float32)
    results = [
        run_onnx(
            _convert_to_onnx(folder / n, tmp_path / f"{n}.onnx", {"input_1": x.shape}),
            {"input_1": x},
        )["dense_1/Softmax"]
        for n in ("model.uff", "dot.uff")
    ]
    np.testing.assert_array_equal(results[0], results[1])


def test_input_without_shape_names_the_input(shared_uff: Path, tmp_path: Path) -> None:
    dest = tmp_path / "m.onnx"
    with pytest.raises(UsageError, match=r"'input_1', 'input_2'.*--input input_1:1x"):
        uff_to_onnx(load_uff(shared_uff / "csvance-keras-jetson" / "graph.uff"), dest)
    assert not dest.exists()


def test_output_marks_any_node(shared_uff: Path, tmp_path: Path) -> None:
    from trtimport.importers.uff.context import Request

    model = load_uff(shared_uff / "xuansan915-mnist" / "model.uff")
    done = uff_to_onnx(model, tmp_path / "m.onnx", Request(outputs=["dense/Relu:0"]))
    assert done.outputs == ["dense/Relu:0"]
    values = run_onnx(done.path, {"input_1": np.ones((1, 28, 28, 1), np.float32)})
    assert values["dense/Relu:0"].shape == (1, 512) and values["dense/Relu:0"].min() >= 0
    with pytest.raises(OutputMarkingError, match=r"no node 'dense/Nope'.*dense/BiasAdd"):
        uff_to_onnx(model, tmp_path / "x.onnx", Request(outputs=["dense/Nope"]))
