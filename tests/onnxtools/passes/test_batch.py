"""--batch: a fixed-batch ONNX model becomes batch-dynamic and builds with its profiles."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from precision_nets import lenet_from_caffe, resnet_net

from trtimport.core.options import BuildOptions, ImportOptions, ShapeRange
from trtimport.errors import UsageError
from trtimport.onnxtools.passes.batch import make_batch_dynamic

ort = pytest.importorskip("onnxruntime")

MNIST = Path(__file__).resolve().parents[3] / "examples" / "mnist"


@pytest.fixture(scope="module")
def lenet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """LeNet with batch 1 baked into its input and its Reshape (real weights, via OpenCV)."""
    pytest.importorskip("cv2")
    path = tmp_path_factory.mktemp("lenet") / "lenet.onnx"
    onnx.save(
        lenet_from_caffe(str(MNIST / "lenet.prototxt"), str(MNIST / "lenet.caffemodel")), str(path)
    )
    return path


def test_dynamic_lenet_runs_any_batch_with_the_same_results(lenet: Path) -> None:
    model = onnx.load(str(lenet))
    dynamic, notes = make_batch_dynamic(model)
    assert notes == []
    assert dynamic.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    reshape = next(n for n in dynamic.graph.node if n.op_type == "Reshape")
    target = next(t for t in dynamic.graph.initializer if t.name == reshape.input[1])
    assert numpy_helper.to_array(target).tolist() == [-1, 800]
    with np.load(MNIST / "digits.npz", allow_pickle=False) as data:
        x = data["images"][:5, None].astype(np.float32) / 256
    one = ort.InferenceSession(str(lenet), providers=["CPUExecutionProvider"])
    many = ort.InferenceSession(dynamic.SerializeToString(), providers=["CPUExecutionProvider"])
    singles = np.concatenate([one.run(None, {"x": s[None]})[0] for s in x])
    np.testing.assert_allclose(many.run(None, {"x": x})[0], singles, rtol=1e-5, atol=1e-6)


def test_reshape_with_another_minus_one_copies_the_batch() -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 12])
    shape = numpy_helper.from_array(np.array([2, -1], np.int64), "shape")
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["y"])], "g", [x], [y], [shape]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    dynamic, _ = make_batch_dynamic(model)
    target = next(t for t in dynamic.graph.initializer if t.name == dynamic.graph.node[0].input[1])
    assert numpy_helper.to_array(target).tolist() == [0, -1]
    out = ort.InferenceSession(dynamic.SerializeToString(), providers=["CPUExecutionProvider"])
    assert out.run(None, {"x": np.zeros((5, 3, 4), np.float32)})[0].shape == (5, 12)


def test_baked_batch_in_expand_is_reported_by_node() -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 3])
    shape = numpy_helper.from_array(np.array([4, 3], np.int64), "shape")
    node = helper.make_node("Expand", ["x", "shape"], ["y"], name="grow")
    graph = helper.make_graph([node], "g", [x], [y], [shape])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    _, notes = make_batch_dynamic(model)
    assert len(notes) == 1 and "node 0 grow (Expand): constant [4, 3]" in notes[0]


def test_dynamic_batch_builds_with_two_profiles_recorded_in_the_sidecar(
    tmp_path: Path, lenet: Path
) -> None:
    pytest.importorskip("tensorrt_rtx")
    from trtimport import convert

    engine = tmp_path / "lenet.engine"
    result = convert(
        lenet,
        engine,
        import_options=ImportOptions(batch=(1, 1, 1), more_batches=[(2, 8, 32)]),
        build_options=BuildOptions(progress=False),
        backend="tensorrt_rtx",
    )
    assert result.inputs[0].shape == (-1, 1, 28, 28)
    sidecar = json.loads(engine.with_name("lenet.engine.json").read_text())
    assert sidecar["profiles"] == [
        {"x": ShapeRange((1, 1, 28, 28), (1, 1, 28, 28), (1, 1, 28, 28)).as_dict()},
        {"x": ShapeRange((2, 1, 28, 28), (8, 1, 28, 28), (32, 1, 28, 28)).as_dict()},
    ]
    assert sidecar["import_options"]["batch"] == [1, 1, 1]
    assert sidecar["inputs"][0]["shape"] == [-1, 1, 28, 28]


def test_int8_with_dynamic_batch_builds(tmp_path: Path) -> None:
    pytest.importorskip("tensorrt_rtx")
    from trtimport import convert
    from trtimport.core.options import PrecisionOptions

    src = tmp_path / "resnet.onnx"
    onnx.save(resnet_net(batch=2), str(src))
    calib = tmp_path / "calib.npz"
    np.savez(calib, x=np.random.default_rng(0).normal(0, 1, (6, 3, 32, 32)).astype(np.float32))
    options = ImportOptions(
        batch=(1, 4, 8),
        precision=PrecisionOptions("fp16", int8=True, calib_data=calib, calib_method="max"),
    )
    engine = tmp_path / "resnet.engine"
    convert(
        src,
        engine,
        import_options=options,
        build_options=BuildOptions(progress=False),
        backend="tensorrt_rtx",
    )
    sidecar = json.loads(engine.with_name("resnet.engine.json").read_text())
    assert sidecar["profiles"][0]["x"]["max"] == [8, 3, 32, 32]
    assert json.loads(engine.with_name("resnet.engine.calib.json").read_text())["samples"] == 6


def test_batch_with_shapes_is_a_clear_conflict(tmp_path: Path, lenet: Path, cli) -> None:  # type: ignore[no-untyped-def]
    proc = cli(str(lenet), "--batch", "1/4/8", "--shapes", "x:1x1x28x28/4x1x28x28/8x1x28x28")
    assert proc.returncode == 1
    assert "--batch creates the optimization profiles itself" in proc.stderr
    assert "Traceback" not in proc.stderr
    fixed = cli(str(lenet), "--batch", "1/4/8", "--input", "x:2x1x28x28")
    assert fixed.returncode == 1 and "--input fixes input shapes" in fixed.stderr


def test_batch_refuses_inputs_with_other_dynamic_dims(tmp_path: Path) -> None:
    pytest.importorskip("tensorrt_rtx")
    from trtimport import import_model

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "n"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "n"])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(UsageError, match=r"'x' \[-1, -1\] have other dynamic dimensions"):
        import_model(path, options=ImportOptions(batch=(1, 2, 4)), backend="tensorrt_rtx")


def test_batch_leaves_big_external_weights_unread(tmp_path: Path, lenet: Path) -> None:
    pytest.importorskip("tensorrt_rtx")
    from trtimport import import_model

    model = onnx.load(str(lenet))
    source = tmp_path / "src" / "lenet.onnx"
    source.parent.mkdir()
    onnx.save(model, str(source), save_as_external_data=True, location="lenet.data")
    options = ImportOptions(batch=(1, 4, 8))
    with import_model(source, options=options, backend="tensorrt_rtx") as imported:
        assert imported.onnx_path is not None and imported.onnx_path != source
        prepared = onnx.load(str(imported.onnx_path), load_external_data=False)
        kept = [t for t in prepared.graph.initializer if t.data_location == TensorProto.EXTERNAL]
        # ip1's 500x800 weights (1.6 MB) stay in lenet.data, unread; the small ones were read.
        assert [tuple(t.dims) for t in kept] == [(500, 800)]
        link = imported.onnx_path.parent / "lenet.data"
        assert link.is_symlink() and link.resolve() == (tmp_path / "src" / "lenet.data")
        assert imported.inputs[0].shape == (-1, 1, 28, 28)
