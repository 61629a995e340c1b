"""--int8: calibration with ONNX Runtime, Q/DQ insertion, the cache, and building with RTX."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from precision_nets import lenet_from_caffe, mlp_net, resnet_net

from trtimport.core.options import BuildOptions, ImportOptions, PrecisionOptions
from trtimport.errors import UnsupportedLayerError, UsageError
from trtimport.onnxtools.passes.calibrate import entropy_amax, percentile_amax
from trtimport.onnxtools.passes.quantize import plan_quantization, quantize_weight

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("cv2")

REPO = Path(__file__).resolve().parents[3]
MNIST = REPO / "examples" / "mnist"


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    """The 1,000 real MNIST digits scaled by 1/256 as Caffe's example does, and labels."""
    with np.load(MNIST / "digits.npz", allow_pickle=False) as data:
        images = data["images"].astype(np.float32)[:, None] / 256
        return images, data["labels"]


@pytest.fixture(scope="module")
def lenet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """LeNet as ONNX with the real caffemodel's weights (read by OpenCV)."""
    path = tmp_path_factory.mktemp("lenet") / "lenet.onnx"
    model = lenet_from_caffe(str(MNIST / "lenet.prototxt"), str(MNIST / "lenet.caffemodel"))
    onnx.save(model, str(path))
    return path


def _top1(path: Path, images: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.array([session.run(None, {name: x[None]})[0].argmax() for x in images])


def _convert(src: Path, engine: Path, **precision: object):  # type: ignore[no-untyped-def]
    from trtimport import convert

    return convert(
        src,
        engine,
        import_options=ImportOptions(precision=PrecisionOptions(**precision)),  # type: ignore[arg-type]
        build_options=BuildOptions(progress=False),
        save_onnx_to=engine.with_suffix(".onnx"),
        backend="tensorrt_rtx",
    )


def test_lenet_int8_agrees_with_fp32_on_99_percent_of_real_digits(
    tmp_path: Path, lenet: Path, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    pytest.importorskip("tensorrt_rtx")
    images, labels = digits
    calib = tmp_path / "calib.npz"
    np.savez(calib, x=images[:200])
    engine = tmp_path / "lenet-int8.engine"
    result = _convert(lenet, engine, int8=True, calib_data=calib, calib_method="entropy")
    assert engine.stat().st_size > 0
    int8_onnx = engine.with_suffix(".onnx")
    ops = [n.op_type for n in onnx.load(str(int8_onnx)).graph.node]
    assert ops.count("QuantizeLinear") == 4 and ops.count("DequantizeLinear") == 8
    fp32 = _top1(lenet, images[200:])
    int8 = _top1(int8_onnx, images[200:])
    agreement = float(np.mean(fp32 == int8))
    accuracy = float(np.mean(int8 == labels[200:]))
    print(
        f"LeNet INT8 (entropy, 200 calibration digits): top-1 agrees with fp32 on "
        f"{agreement:.2%} of 800 test digits; INT8 accuracy {accuracy:.2%}, "
        f"fp32 accuracy {np.mean(fp32 == labels[200:]):.2%}"
    )
    assert agreement >= 0.99
    cache = engine.with_name(engine.name + ".calib.json")
    data = json.loads(cache.read_text())
    assert data["method"] == "entropy" and data["samples"] == 200
    assert set(data["ranges"]) == {"x", "maxpool_5", "reshape_14", "relu_20"}
    assert any("ranges saved to" in n for n in result.notes)


def test_cache_is_reused_and_checked(tmp_path: Path, lenet: Path, digits: tuple) -> None:
    pytest.importorskip("tensorrt_rtx")
    calib = tmp_path / "calib.npz"
    np.savez(calib, x=digits[0][:20])
    cache = tmp_path / "ranges.json"
    first = _convert(
        lenet,
        tmp_path / "a.engine",
        int8=True,
        calib_data=calib,
        calib_method="max",
        calib_cache=cache,
    )
    assert any("calibrated 4 activation(s) on 20 sample(s)" in n for n in first.notes)
    again = _convert(lenet, tmp_path / "b.engine", int8=True, calib_method="max", calib_cache=cache)
    assert any(f"reused the activation ranges in {cache}" in n for n in again.notes)
    a = onnx.load(str(tmp_path / "a.onnx"))
    b = onnx.load(str(tmp_path / "b.onnx"))
    assert a.graph.SerializeToString() == b.graph.SerializeToString()
    np.savez(calib, x=digits[0][20:30])
    other = _convert(
        lenet,
        tmp_path / "d.engine",
        int8=True,
        calib_data=calib,
        calib_method="max",
        calib_cache=cache,
    )
    assert any("on 10 sample(s)" in n for n in other.notes)  # new data: calibrated again
    with pytest.raises(UsageError, match="different method"):
        _convert(lenet, tmp_path / "c.engine", int8=True, calib_method="entropy", calib_cache=cache)


def test_percentile_and_max_methods(tmp_path: Path, lenet: Path, digits: tuple) -> None:
    from trtimport.onnxtools.passes.calibrate import compute_ranges

    batches = [{"x": x[None]} for x in digits[0][:30]]
    model = onnx.load(str(lenet))
    tensors = ["x", "relu_20"]
    maxes = compute_ranges(model, tensors, batches, "max", 99.99, tmp_path)
    pct = compute_ranges(model, tensors, batches, "percentile", 99.0, tmp_path)
    assert maxes["x"] == pytest.approx(float(digits[0][:30].max()))
    assert 0 < pct["relu_20"] < maxes["relu_20"]


def test_entropy_clips_rare_outliers_and_keeps_dense_ranges() -> None:
    rng = np.random.default_rng(0)
    values = np.abs(np.concatenate([rng.normal(0, 1, 200_000), [60.0, -80.0]]))
    hist, _ = np.histogram(values, bins=2048, range=(0, values.max()))
    amax = entropy_amax(hist, float(values.max()))
    assert 2.5 < amax < 20
    uniform = rng.uniform(0, 1, 100_000)
    hist, _ = np.histogram(uniform, bins=2048, range=(0, 1))
    assert entropy_amax(hist, 1.0) > 0.9
    assert percentile_amax(hist, 1.0, 50.0) == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize(("shape", "axis"), [((8, 3, 3, 3), 0), ((16, 32), 1), ((16, 32), None)])
def test_weights_quantize_per_channel_within_half_a_step(shape: tuple, axis: int | None) -> None:
    w = np.random.default_rng(1).normal(0, 1, shape).astype(np.float32)
    w[..., 0] *= 10  # channels with very different ranges
    q, scale = quantize_weight(w, axis)
    assert q.dtype == np.int8 and np.abs(q).max() == 127
    expand = (
        scale if axis is None else scale.reshape([-1 if d == axis else 1 for d in range(w.ndim)])
    )
    assert np.all(np.abs(q * expand - w) <= expand / 2 + 1e-6)


def test_model_without_int8_layers_names_layers_and_backend() -> None:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [
            helper.make_node("Relu", ["x"], ["r"], name="act"),
            helper.make_node("Softmax", ["r"], ["y"]),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(UnsupportedLayerError, match=r"on tensorrt_rtx.*Relu x1, Softmax x1"):
        plan_quantization(model, "tensorrt_rtx")
    with pytest.raises(UnsupportedLayerError, match=r"node 0 Conv_\d+ \(Conv\): plain-cpu has no"):
        plan_quantization(resnet_net(), "plain-cpu")


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_int8_conv_net_builds_with_tensorrt_rtx(tmp_path: Path, precision: str) -> None:
    pytest.importorskip("tensorrt_rtx")
    src = tmp_path / "resnet.onnx"
    onnx.save(resnet_net(), str(src))
    calib = tmp_path / "calib.npz"
    np.savez(calib, x=np.random.default_rng(0).normal(0, 1, (8, 3, 32, 32)).astype(np.float32))
    engine = tmp_path / "resnet-int8.engine"  # its ONNX beside it, not over the source
    result = _convert(
        src, engine, precision=precision, int8=True, calib_data=calib, calib_method="percentile"
    )
    assert engine.stat().st_size > 0
    assert any("layer(s) in INT8" in n for n in result.notes)
    quantized = onnx.load(str(engine.with_suffix(".onnx")))
    axes = [
        a.i for n in quantized.graph.node if n.op_type == "DequantizeLinear" for a in n.attribute
    ]
    assert axes and set(axes) == {0}  # Conv and Gemm(transB=1) weights: output channel axis 0


def test_mlp_matmul_weight_is_quantized_on_its_output_axis() -> None:
    plan = plan_quantization(mlp_net(), "tensorrt_rtx")
    kinds = {layer.op: layer.weight for layer in plan.layers}
    assert kinds == {"MatMul": (1, 1), "Gemm": (1, 0)}


def test_old_opset_is_refused(tmp_path: Path) -> None:
    from trtimport.onnxtools.passes.quantize import quantize_int8

    model = resnet_net()
    model.opset_import[0].version = 11
    with pytest.raises(UsageError, match="opset 13 or newer"):
        quantize_int8(model, PrecisionOptions(int8=True), "tensorrt_rtx", tmp_path, tmp_path / "c")


def test_cli_calibrates_on_a_folder_of_images(tmp_path: Path, lenet: Path, cli) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("tensorrt_rtx")
    engine = tmp_path / "lenet.engine"
    proc = cli(
        str(lenet), "--int8", "--calib-data", str(MNIST / "digits"), "--scale", "0.00390625",
        "--calib-method", "max", "-o", str(engine), "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    cache = json.loads(engine.with_name("lenet.engine.calib.json").read_text())
    assert cache["samples"] == 10
    assert cache["ranges"]["x"] == pytest.approx(255 / 256)
    bad = cli(str(lenet), "--calib-data", str(MNIST / "digits"), "-o", str(engine))
    assert bad.returncode == 1 and "--calib-data only apply with --int8" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_int8_with_fp16_at_opset_19_feeds_16_bit_dq_straight_into_layers(
    tmp_path: Path, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    pytest.importorskip("tensorrt_rtx")
    images = digits[0]
    src = tmp_path / "lenet19.onnx"
    model = lenet_from_caffe(
        str(MNIST / "lenet.prototxt"), str(MNIST / "lenet.caffemodel"), opset=19
    )
    onnx.save(model, str(src))
    calib = tmp_path / "calib.npz"
    np.savez(calib, x=images[:100])
    engine = tmp_path / "lenet19-int8.engine"  # its ONNX beside it, not over the source
    _convert(src, engine, precision="fp16", int8=True, calib_data=calib, calib_method="max")
    quantized = onnx.load(str(engine.with_suffix(".onnx")))
    producer = {o: n.op_type for n in quantized.graph.node for o in n.output}
    layers = [n for n in quantized.graph.node if n.op_type in ("Conv", "Gemm")]
    assert all(producer[n.input[0]] == producer[n.input[1]] == "DequantizeLinear" for n in layers)
    assert [n.op_type for n in quantized.graph.node].count("Cast") == 2  # model input and output
    fp32, mixed = _top1(src, images[100:400]), _top1(engine.with_suffix(".onnx"), images[100:400])
    assert np.mean(fp32 == mixed) >= 0.99
