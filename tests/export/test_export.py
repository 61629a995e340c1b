"""The network exporter: unsupported layers in one error, atomic files, the CLI flag, Caffe."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conftest import run_cli

REPO = Path(__file__).resolve().parents[2]
#: The CLI runs in a temporary folder, so the sources must be on the path absolutely.
SRC_ENV = {"PYTHONPATH": str(REPO / "src")}


def _network_with_two_unsupported_layers():  # type: ignore[no-untyped-def]
    from trtimport.core.backend import get_backend

    backend = get_backend()
    trt = backend.trt
    builder = trt.Builder(trt.Logger())
    network = builder.create_network(0)
    x = network.add_input("x", trt.float32, (1, 2, 5))
    bounds = network.add_input("bounds", trt.int32, (1, 2, 1))
    first = network.add_ragged_softmax(x, bounds)
    first.name = "ragged_a"
    second = network.add_ragged_softmax(first.get_output(0), bounds)
    second.name = "ragged_b"
    relu = network.add_activation(second.get_output(0), trt.ActivationType.RELU)
    network.mark_output(relu.get_output(0))
    return backend, builder, network


def test_unsupported_layers_are_all_named_in_one_error(tmp_path: Path) -> None:
    """Every inexpressible layer is listed with its type and name; nothing is written."""
    from trtimport.errors import UnsupportedLayerError
    from trtimport.export.writer import export_network_onnx

    backend, _builder, network = _network_with_two_unsupported_layers()
    dest = tmp_path / "net.onnx"
    with pytest.raises(UnsupportedLayerError) as info:
        export_network_onnx(network, dest, backend)
    message = str(info.value)
    assert "2 layer(s)" in message
    assert "RAGGED_SOFTMAX layer 'ragged_a'" in message
    assert "RAGGED_SOFTMAX layer 'ragged_b'" in message
    assert not list(tmp_path.iterdir())


def _shape_tensor_model(path: Path) -> Path:
    """A dynamic-batch ONNX model whose reshape target is computed from Shape at runtime."""
    import onnx
    from onnx import helper, numpy_helper

    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Concat", ["n", "minus1"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["flat"]),
        helper.make_node("ConstantOfShape", ["s"], ["zeros"]),
        helper.make_node("Range", ["r0", "len", "r1"], ["ramp"]),
        helper.make_node("Add", ["flat", "ramp"], ["y"]),
        helper.make_node("Flatten", ["zeros"], ["z"], axis=1),
        helper.make_node("Add", ["y", "z"], ["out"]),
    ]
    inits = [
        numpy_helper.from_array(np.array([0], np.int64), "zero"),
        numpy_helper.from_array(np.array([-1], np.int64), "minus1"),
        numpy_helper.from_array(np.array(0.0, np.float32), "r0"),
        numpy_helper.from_array(np.array(12.0, np.float32), "len"),
        numpy_helper.from_array(np.array(1.0, np.float32), "r1"),
    ]
    graph = helper.make_graph(
        nodes,
        "dyn",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 3, 4])],
        [helper.make_tensor_value_info("out", onnx.TensorProto.FLOAT, ["N", 12])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_dynamic_shapes_round_trip(tmp_path: Path) -> None:
    """Shape-tensor layers (shape, gather, concat, fill) export; the batch stays dynamic."""
    ort = pytest.importorskip("onnxruntime")
    from trtimport.core.options import ImportOptions, ShapeRange
    from trtimport.export.writer import network_to_onnx
    from trtimport.populate import import_model

    source = _shape_tensor_model(tmp_path / "dyn.onnx")
    options = ImportOptions(profiles=[{"x": ShapeRange((1, 3, 4), (2, 3, 4), (8, 3, 4))}])
    with import_model(source, options=options) as imported:
        kinds = {imported.network.get_layer(i).type.name for i in range(imported.num_layers)}
        model = network_to_onnx(imported.network, imported.backend)
    assert "SHAPE" in kinds
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param
    exported = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    reference = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"])
    for batch in (1, 5):
        x = np.random.default_rng(batch).standard_normal((batch, 3, 4)).astype(np.float32)
        np.testing.assert_allclose(
            exported.run(None, {"x": x})[0], reference.run(None, {"x": x})[0], rtol=1e-6
        )


def test_cli_save_network_onnx_without_engine(tmp_path: Path) -> None:
    """--save-network-onnx works with --no-engine on an ONNX model; nothing else is written."""
    source = _shape_tensor_model(tmp_path / "dyn.onnx")
    out = tmp_path / "out" / "network.onnx"
    proc = run_cli(
        str(source),
        "--shapes",
        "x:1x3x4/2x3x4/8x3x4",
        "--save-network-onnx",
        str(out),
        "--no-engine",
        cwd=tmp_path,
        env=SRC_ENV,
    )
    assert proc.returncode == 0, proc.stderr
    assert out.is_file()
    assert sorted(p.name for p in out.parent.iterdir()) == ["network.onnx"]
    assert not list(tmp_path.glob("*.engine"))


def test_cli_export_failure_leaves_nothing(tmp_path: Path) -> None:
    """A network the exporter refuses: exit 1, the layer named, no ONNX and no engine."""
    import onnx
    from onnx import helper

    # TensorRT's parser turns NonMaxSuppression into an NMS layer, which the exporter refuses.
    graph = helper.make_graph(
        [helper.make_node("NonMaxSuppression", ["boxes", "scores", "max_out", "iou"], ["sel"])],
        "nms",
        [
            helper.make_tensor_value_info("boxes", onnx.TensorProto.FLOAT, [1, 6, 4]),
            helper.make_tensor_value_info("scores", onnx.TensorProto.FLOAT, [1, 1, 6]),
        ],
        [helper.make_tensor_value_info("sel", onnx.TensorProto.INT64, [None, 3])],
        [
            onnx.numpy_helper.from_array(np.array([3], np.int64), "max_out"),
            onnx.numpy_helper.from_array(np.array([0.5], np.float32), "iou"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "nms.onnx"))
    out = tmp_path / "net.onnx"
    proc = run_cli(
        str(tmp_path / "nms.onnx"), "--save-network-onnx", str(out), cwd=tmp_path, env=SRC_ENV
    )
    assert proc.returncode == 1, proc.stdout
    assert "cannot export the network as ONNX" in proc.stderr
    assert "NMS layer 'node_of_sel" in proc.stderr and "Traceback" not in proc.stderr
    assert (
        not out.exists() and not list(tmp_path.glob("*.engine*")) and not list(tmp_path.glob(".*"))
    )


def _caffe_models() -> list[tuple[Path, Path | None]]:
    folder = REPO / "tests" / "data" / "caffe"
    models = []
    for proto in sorted(folder.glob("*.prototxt")):
        weights = folder / "weights" / f"{proto.stem}.caffemodel"
        models.append((proto, weights if weights.is_file() else None))
    return models


#: SSD's DetectionOutput has no ONNX mapping (docs/caffe.md): that net is exported up to its inputs.
CAFFE_OUTPUTS = {"MobileNet-SSD": ["mbox_loc", "mbox_conf_flatten", "mbox_priorbox"]}


@pytest.mark.parametrize(
    ("prototxt", "weights"), _caffe_models(), ids=lambda p: getattr(p, "stem", "")
)
def test_caffe_model_round_trip(prototxt: Path, weights: Path | None, tmp_path: Path) -> None:
    """Caffe model -> ONNX -> TensorRT network -> exported ONNX matches the ONNX it came from."""
    pytest.importorskip("trtimport.importers.caffe")
    ort = pytest.importorskip("onnxruntime")
    from trtimport.core.options import ImportOptions
    from trtimport.export.writer import network_to_onnx
    from trtimport.importers.caffe.make_weights import make_caffe_weights
    from trtimport.onnxtools.external_data import load_model
    from trtimport.populate import import_model

    if weights is None:  # seeded random weights for the nets shipped without trained ones
        weights = tmp_path / f"{prototxt.stem}.caffemodel"
        make_caffe_weights(prototxt, weights, seed=0)
    options = ImportOptions(weights=weights, outputs=CAFFE_OUTPUTS.get(prototxt.stem, []))
    with import_model(prototxt, options=options) as imported:
        assert imported.onnx_path is not None
        # The intermediate refers to the caffemodel's blobs; load_model reads them in.
        source = load_model(imported.onnx_path).SerializeToString()
        exported = network_to_onnx(imported.network, imported.backend).SerializeToString()
        inputs = imported.inputs
    rng = np.random.default_rng(0)
    feeds = {t.name: rng.standard_normal(t.shape).astype(np.float32) for t in inputs}
    got = ort.InferenceSession(exported, providers=["CPUExecutionProvider"]).run(None, feeds)
    want = ort.InferenceSession(source, providers=["CPUExecutionProvider"]).run(None, feeds)
    for g, w in zip(got, want, strict=True):
        assert np.max(np.abs(g - w)) / max(np.max(np.abs(w)), 1e-30) <= 1e-5


@pytest.mark.parametrize("condition", ["carried", "from_state"])
def test_while_loop_round_trips(tmp_path: Path, condition: str) -> None:
    """ONNX Loop with a trip count and a condition (passed through, or computed from the
    iteration number: the parser makes both WHILE trip limits on a recurrence) -> TensorRT
    loop -> exported ONNX Loop gives onnxruntime's numbers."""
    import onnx
    import onnxruntime as ort
    from onnx import helper, numpy_helper

    from trtimport.export.writer import network_to_onnx
    from trtimport.populate import import_model

    if condition == "carried":
        cond_node = helper.make_node("Identity", ["cond_in"], ["cond_out"])
    else:
        cond_node = helper.make_node("Less", ["i", "limit"], ["cond_out"])
    f32, i64, b = onnx.TensorProto.FLOAT, onnx.TensorProto.INT64, onnx.TensorProto.BOOL
    body = helper.make_graph(
        [helper.make_node("Add", ["acc_in", "one"], ["acc_out"]), cond_node],
        "body",
        [
            helper.make_tensor_value_info("i", i64, []),
            helper.make_tensor_value_info("cond_in", b, []),
            helper.make_tensor_value_info("acc_in", f32, [2]),
        ],
        [
            helper.make_tensor_value_info("cond_out", b, []),
            helper.make_tensor_value_info("acc_out", f32, [2]),
        ],
        [
            numpy_helper.from_array(np.ones(2, np.float32), "one"),
            numpy_helper.from_array(np.array(1, np.int64), "limit"),
        ],
    )
    graph = helper.make_graph(
        [helper.make_node("Loop", ["trip", "cond", "x"], ["y"], body=body)],
        "loop",
        [helper.make_tensor_value_info("x", f32, [2])],
        [helper.make_tensor_value_info("y", f32, [2])],
        [
            numpy_helper.from_array(np.array(3, np.int64), "trip"),
            numpy_helper.from_array(np.array(True), "cond"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "loop.onnx"))
    with import_model(tmp_path / "loop.onnx") as imported:
        exported = network_to_onnx(imported.network, imported.backend)
    onnx.checker.check_model(exported, full_check=True)
    assert [n.op_type for n in exported.graph.node].count("Loop") == 1
    x = {"x": np.array([1.0, 2.0], np.float32)}
    (want,) = ort.InferenceSession(model.SerializeToString()).run(None, x)
    (got,) = ort.InferenceSession(exported.SerializeToString()).run(None, x)
    np.testing.assert_array_equal(got, want)
    assert want.tolist() == ([4.0, 5.0] if condition == "carried" else [3.0, 4.0])


@pytest.mark.parametrize("parameters", ["attributes", "tensors"])
def test_random_normal_fill_exports_its_distribution(parameters: str) -> None:
    """A RANDOM_NORMAL fill (mean 3, deviation 0.5, as attributes or as tensors) exports as
    RandomNormalLike whose samples have that mean and deviation."""
    import onnx
    import onnxruntime as ort

    from trtimport.core.backend import get_backend
    from trtimport.export.writer import network_to_onnx

    backend = get_backend()
    trt = backend.trt
    network = trt.Builder(trt.Logger()).create_network(0)
    x = network.add_input("x", trt.float32, (1,))
    fill = network.add_fill((4000,), trt.FillOperation.RANDOM_NORMAL, trt.float32)
    if parameters == "tensors":
        for i, value in ((1, 3.0), (2, 0.5)):
            fill.set_input(i, network.add_constant((), np.array(value, np.float32)).get_output(0))
    else:
        fill.alpha, fill.beta = 3.0, 0.5
    total = network.add_elementwise(fill.get_output(0), x, trt.ElementWiseOperation.SUM)
    total.get_output(0).name = "y"
    network.mark_output(total.get_output(0))
    model = network_to_onnx(network, backend)
    onnx.checker.check_model(model, full_check=True)
    assert "RandomNormalLike" in [n.op_type for n in model.graph.node]
    (y,) = ort.InferenceSession(model.SerializeToString()).run(None, {"x": np.zeros(1, np.float32)})
    assert y.shape == (4000,) and y.dtype == np.float32
    assert abs(float(y.mean()) - 3.0) < 6 * 0.5 / np.sqrt(y.size)
    assert abs(float(y.std()) - 0.5) < 0.05
