"""--keep-fp32 and --max-error for --precision and --int8: library API, CLI, sidecar, importers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from precision_nets import NetBuilder, resnet_net

from trtimport.core.options import ImportOptions, PrecisionOptions
from trtimport.errors import UsageError
from trtimport.onnxtools.passes.lowering import lower_model, relative_error, sample_batches

ort = pytest.importorskip("onnxruntime")

REPO = Path(__file__).resolve().parents[3]
MNIST = REPO / "examples" / "mnist"
SHARED_PB = REPO.parent / "shared" / "models" / "uff" / "xuansan915-mnist" / "model.pb"


def _run(model: onnx.ModelProto | Path, batches: list[dict[str, np.ndarray]]) -> list:
    source = str(model) if isinstance(model, Path) else model.SerializeToString()
    session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    return [session.run(None, b) for b in batches]


def _types(model: onnx.ModelProto) -> dict[str, int]:
    inferred = onnx.shape_inference.infer_shapes(model)
    return {v.name: v.type.tensor_type.elem_type for v in inferred.graph.value_info}


def test_keep_fp32_globs_leave_nodes_unlowered_and_unquantized(tmp_path: Path) -> None:
    model = resnet_net()
    convs = [n.name for n in model.graph.node if n.op_type == "Conv"]
    relu_node = next(n for n in model.graph.node if n.op_type == "Relu")
    # A node name, a glob, and a tensor name (the node writing it is kept).
    options = PrecisionOptions("fp16", keep_fp32=(convs[0], "Gemm_*", relu_node.output[0]))
    lowered, notes, report = lower_model(model, options, "tensorrt_rtx", tmp_path, tmp_path / "c")
    kept = {convs[0], *(n.name for n in model.graph.node if n.op_type == "Gemm")}
    relu = relu_node.name
    assert report is not None and set(report.kept_by_user) == kept | {relu}
    types = _types(lowered)
    for node in lowered.graph.node:
        if node.name in kept | {relu}:
            assert all(types.get(t, 1) == onnx.TensorProto.FLOAT for t in node.output), node.name
    assert types[next(n for n in lowered.graph.node if n.name == convs[1]).output[0]] == (
        onnx.TensorProto.FLOAT16
    )
    assert any("--keep-fp32: 3 node(s) stay fp32" in n for n in notes)
    with pytest.raises(UsageError, match=r"--keep-fp32 'nothing\*': no node or tensor"):
        lower_model(
            resnet_net(),
            PrecisionOptions("fp16", keep_fp32=("nothing*",)),
            "tensorrt_rtx",
            tmp_path,
            tmp_path / "c",
        )
    with pytest.raises(UsageError, match="apply to --int8 or --precision"):
        PrecisionOptions(max_error=0.1)
    with pytest.raises(UsageError, match="must be a positive number"):
        PrecisionOptions("fp16", max_error=0)


def _cancelling_net() -> onnx.ModelProto:
    """Conv nets around ``(x + 4000) - 4000``: in fp16 the offset rounds x to steps of 2 to 4."""
    b = NetBuilder(3)
    x = b.op("Relu", [b.conv("x", 3, 8)])
    offset = b.const(np.array(4000.0, np.float32))
    x = b.op("Sub", [b.op("Add", [x, offset]), offset])
    x = b.op("Relu", [b.conv(x, 8, 8)])
    x = b.op("Relu", [b.conv(x, 8, 8)])
    return b.model([1, 3, 16, 16], x)


def _fp16_arithmetic(model: onnx.ModelProto, batches: list[dict[str, np.ndarray]]) -> list:
    """Outputs of a 16-bit model computed in 16 bits throughout (``onnx.reference``); ONNX
    Runtime's CPU provider runs many fp16 ops in fp32 and would hide their rounding."""
    from onnx.reference import ReferenceEvaluator

    evaluator = ReferenceEvaluator(model)
    return [evaluator.run(None, b) for b in batches]


def test_max_error_fp16_keeps_the_harmful_nodes_until_the_bound_holds(tmp_path: Path) -> None:
    model = _cancelling_net()
    options = PrecisionOptions("fp16", max_error=1e-3)
    batches, source = sample_batches(model, options)
    assert len(batches) == 4 and "seeded random" in source
    reference = _run(model, batches)
    plain, _, _ = lower_model(_cancelling_net(), PrecisionOptions("fp16"), "x", tmp_path, tmp_path)
    plain_error = relative_error(reference, _fp16_arithmetic(plain, batches))
    assert plain_error > 0.1  # the offset costs fp16 its precision
    assert relative_error(reference, _run(plain, batches)) < 1e-3  # ONNX Runtime hides it
    lowered, _, report = lower_model(_cancelling_net(), options, "x", tmp_path, tmp_path)
    assert report is not None and report.error is not None and report.error <= 1e-3
    assert report.error_before == pytest.approx(plain_error, rel=0.1)
    assert {"Add_9", "Sub_11"} <= set(report.kept)  # the cancellation is found
    assert len(report.kept) <= 3
    assert relative_error(reference, _fp16_arithmetic(lowered, batches)) <= 1e-3
    types = _types(lowered)
    convs = [n for n in lowered.graph.node if n.op_type == "Conv"]
    assert sum(types.get(n.output[0]) == onnx.TensorProto.FLOAT16 for n in convs) >= 2


def test_max_error_bf16_is_measured_with_bf16_rounding(tmp_path: Path) -> None:
    options = PrecisionOptions("bf16", max_error=1e-2)
    _, notes, report = lower_model(_cancelling_net(), options, "x", tmp_path, tmp_path)
    assert report is not None and report.error_before is not None and report.error is not None
    assert report.error_before > 0.5 and report.error <= 1e-2  # bf16 keeps 8 bits
    assert {"Add_9", "Sub_11"} <= set(report.kept)
    assert any(n.startswith("--precision bf16") for n in notes)


def test_max_error_int8_on_calibration_data(tmp_path: Path) -> None:
    pytest.importorskip("trtimport.importers.caffe")
    from trtimport import convert

    with np.load(MNIST / "digits.npz", allow_pickle=False) as data:
        images = data["images"][:40].astype(np.float32)[:, None] / 256
    calib = tmp_path / "calib.npz"
    np.savez(calib, data=images)
    fp32 = tmp_path / "fp32.onnx"
    convert(
        MNIST / "lenet.prototxt",
        import_options=ImportOptions(weights=MNIST / "lenet.caffemodel"),
        save_onnx_to=fp32,
        build=False,
    )
    bound = 1e-4
    int8 = tmp_path / "int8.onnx"
    result = convert(
        fp32,
        import_options=ImportOptions(
            precision=PrecisionOptions(
                int8=True, calib_data=calib, max_error=bound, calib_cache=tmp_path / "c.json"
            )
        ),
        save_onnx_to=int8,
        build=False,
    )
    note = next(n for n in result.notes if n.startswith("--max-error"))
    assert "kept" in note and f"on 32 sample(s) ({calib})" in note
    batches = [{"data": x[None]} for x in images[:32]]
    assert relative_error(_run(fp32, batches), _run(int8, batches)) <= bound
    ops = [n.op_type for n in onnx.load(str(int8)).graph.node]
    assert 0 < ops.count("QuantizeLinear") < 4  # some layers stayed INT8, some were kept


def test_cli_records_the_kept_layers_in_the_sidecar(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("tensorrt_rtx")
    src = tmp_path / "resnet.onnx"
    onnx.save(resnet_net(), str(src))
    engine = tmp_path / "r.engine"
    proc = cli(
        str(src), "--precision", "fp16", "--max-error", "9e-5", "--keep-fp32", "Softmax_*",
        "-o", str(engine), "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    notes = json.loads(proc.stdout)["notes"]
    assert any(n.startswith("--keep-fp32: 1 node(s) stay fp32; --max-error 9e-05") for n in notes)
    record = json.loads(engine.with_name("r.engine.json").read_text())
    guard = record["rewrites"]["precision"]
    assert guard["max_error"] == 9e-5 and guard["error"] <= 9e-5 and guard["kept_for_error"]
    assert guard["keep_fp32"] == [n for n in guard["keep_fp32"] if n.startswith("Softmax_")]
    assert record["import_options"]["precision"]["max_error"] == 9e-5
    bad = cli(str(src), "--max-error", "1e-3", "-o", str(engine))
    assert bad.returncode == 1 and "apply to --int8 or --precision" in bad.stderr
    assert "Traceback" not in bad.stderr


@pytest.mark.tf
def test_tensorflow_graph_with_max_error_and_int8_keep(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    """A real TensorFlow frozen graph (Keras MNIST MLP) through the TensorFlow importer."""
    pytest.importorskip("tensorflow")
    pytest.importorskip("tensorrt_rtx")
    if not SHARED_PB.is_file():
        pytest.skip(f"shared model not found at {SHARED_PB}")
    with np.load(MNIST / "digits.npz", allow_pickle=False) as data:
        images = data["images"][:32].astype(np.float32) / 255
    calib = tmp_path / "calib.npz"
    np.savez(calib, x=images[..., None])
    engine = tmp_path / "mlp.engine"
    proc = cli(
        str(SHARED_PB), "--int8", "--precision", "fp16", "--calib-data", str(calib),
        "--keep-fp32", "dense_1/*", "--max-error", "1e-2", "--input", "input_1:0:1x28x28x1",
        "-o", str(engine), "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    guard = json.loads(engine.with_name("mlp.engine.json").read_text())["rewrites"]["precision"]
    assert "dense_1/MatMul" in guard["keep_fp32"] and guard["error"] <= 1e-2
    notes = json.loads(proc.stdout)["notes"]
    assert any("1 layer(s) in INT8: dense/MatMul" in n for n in notes)


def test_network_script_through_its_exported_onnx(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    """Network scripts fill TensorRT directly; their exported ONNX takes --int8/--max-error."""
    pytest.importorskip("tensorrt_rtx")
    exported = tmp_path / "net.onnx"
    proc = cli(
        str(MNIST / "lenet_net.py"), "--weights", str(MNIST / "lenet.caffemodel"),
        "--save-network-onnx", str(exported), "--no-engine",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    with np.load(MNIST / "digits.npz", allow_pickle=False) as data:
        np.savez(tmp_path / "c.npz", x=data["images"][:32, None].astype(np.float32) / 256)
    engine = tmp_path / "net.engine"
    proc = cli(
        str(exported), "--int8", "--calib-data", str(tmp_path / "c.npz"), "--precision", "fp16",
        "--max-error", "1e-3", "-o", str(engine), "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    notes = json.loads(proc.stdout)["notes"]
    assert any("layer(s) in INT8" in n for n in notes)
    guard = json.loads(engine.with_name("net.engine.json").read_text())["rewrites"]["precision"]
    assert guard["error"] <= 1e-3 and guard["samples"] == 32
