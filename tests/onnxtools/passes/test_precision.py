"""--precision fp16/bf16: the rewritten ONNX keeps fp32 accuracy on ONNX Runtime and builds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from precision_nets import NETS, resnet_net

from trtimport.core.options import BuildOptions, ImportOptions, PrecisionOptions
from trtimport.onnxtools.dtypes import bfloat16_bits_to_float32, float32_to_bfloat16_bits
from trtimport.onnxtools.passes.precision import (
    LOW_OPS,
    SENSITIVE_OPS,
    convert_precision,
)

ort = pytest.importorskip("onnxruntime")

RTOL = 1e-2


def _session(model: onnx.ModelProto):  # type: ignore[no-untyped-def]
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _feeds(model: onnx.ModelProto, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    inits = {t.name for t in model.graph.initializer}
    feeds = {}
    for vi in model.graph.input:
        if vi.name not in inits:
            shape = [d.dim_value or 1 for d in vi.type.tensor_type.shape.dim]
            feeds[vi.name] = rng.normal(0, 1, shape).astype(np.float32)
    return feeds


def relative_error(reference: list[np.ndarray], got: list[np.ndarray]) -> float:
    """max |got - ref| / max |ref| over every output (each output on its own scale)."""
    worst = 0.0
    for ref, out in zip(reference, got, strict=True):
        scale = float(np.max(np.abs(ref))) or 1.0
        worst = max(worst, float(np.max(np.abs(out.astype(np.float64) - ref))) / scale)
    return worst


def _float_input_types(model: onnx.ModelProto) -> dict[str, int]:
    inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    g = inferred.graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*g.input, *g.output, *g.value_info]}
    types.update({t.name: t.data_type for t in g.initializer})
    return types


@pytest.mark.parametrize("name", sorted(NETS))
def test_fp16_stays_within_1e2_of_fp32_on_onnxruntime(name: str) -> None:
    model = NETS[name]()
    low, report = convert_precision(model, "fp16")
    onnx.checker.check_model(low, full_check=True)
    feeds = _feeds(model)
    error = relative_error(_session(model).run(None, feeds), _session(low).run(None, feeds))
    print(f"{name}: fp16 relative error {error:.2e} ({report.summary()})")
    assert error < RTOL
    assert report.low_nodes > 0


@pytest.mark.parametrize("name", sorted(NETS))
def test_sensitive_ops_and_interface_stay_fp32(name: str) -> None:
    model = NETS[name]()
    low, _ = convert_precision(model, "fp16")
    types = _float_input_types(low)
    for vi in [*low.graph.input, *low.graph.output]:
        assert vi.type.tensor_type.elem_type == TensorProto.FLOAT, vi.name
    sensitive = [n for n in low.graph.node if n.op_type in SENSITIVE_OPS]
    assert sensitive
    for node in sensitive:
        for name_in in node.input:
            if name_in:
                assert types[name_in] in (TensorProto.FLOAT, TensorProto.INT64), (node, name_in)
    convs = [n for n in low.graph.node if n.op_type in ("Conv", "Gemm", "MatMul")]
    assert convs and all(types[n.input[1]] == TensorProto.FLOAT16 for n in convs)


def test_handwritten_normalisation_statistics_stay_fp32() -> None:
    low, report = convert_precision(NETS["normalisation"](), "fp16")
    types = _float_input_types(low)
    kept = {n.op_type for n in low.graph.node if types.get(n.output[0]) == TensorProto.FLOAT}
    # mean/variance by hand: ReduceMean -> Sub -> Mul -> ReduceMean -> Add -> Sqrt -> Div
    assert {"Sub", "Mul", "Add", "Sqrt", "Div", "ReduceMean"} <= kept
    assert report.kept_nodes["ReduceMean"] == 2


def test_no_op_is_both_lowered_and_sensitive() -> None:
    assert not LOW_OPS & SENSITIVE_OPS


def test_fp16_error_with_fp16_arithmetic_in_the_reference_evaluator() -> None:
    """ONNX Runtime may compute some fp16 nodes in fp32; onnx's reference evaluator does not."""
    from onnx.reference import ReferenceEvaluator

    model = resnet_net()
    low, _ = convert_precision(model, "fp16")
    feeds = _feeds(model, seed=3)
    error = relative_error(
        _session(model).run(None, feeds), ReferenceEvaluator(low).run(None, feeds)
    )
    print(f"resnet: fp16 relative error with fp16 arithmetic {error:.2e}")
    assert error < RTOL


def test_bfloat16_rounding() -> None:
    values = np.array([1.0, -2.5, 1 + 2**-8, 1 + 3 * 2**-8, 3.14159, np.inf, 1e-40], np.float32)
    bits = float32_to_bfloat16_bits(values)
    back = bfloat16_bits_to_float32(bits)
    # ties go to even: 1 + 2^-8 -> 1.0, 1 + 3*2^-8 -> 1 + 2^-6... (mantissa 7 bits)
    assert back[0] == 1.0 and back[1] == -2.5 and back[2] == 1.0
    assert back[3] == np.float32(1 + 2**-6)
    assert abs(back[4] - 3.14159) < 2**-7 * 4
    assert np.isinf(back[5])
    assert np.isnan(
        bfloat16_bits_to_float32(float32_to_bfloat16_bits(np.array([np.nan], np.float32)))
    )[0]


def test_fp16_clips_weights_beyond_its_range() -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    big = onnx.numpy_helper.from_array(np.array([1e6, -3.0], np.float32), "big")
    graph = helper.make_graph([helper.make_node("Mul", ["x", "big"], ["y"])], "g", [x], [y], [big])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    low, report = convert_precision(model, "fp16")
    assert report.clipped_values == 1
    out = _session(low).run(None, {"x": np.ones(2, np.float32)})[0]
    assert out.tolist() == [65504.0, -3.0]


def test_control_flow_stays_fp32_and_reads_cast_outer_tensors() -> None:
    b = resnet_net()
    feat = b.graph.output[0].name
    g = b.graph
    # the then-branch reads an outer 16-bit tensor (the last Gemm's output) by name
    gemm_out = next(n for n in g.node if n.op_type == "Gemm").output[0]
    then = helper.make_graph(
        [helper.make_node("Relu", [gemm_out], ["t"])],
        "then",
        [],
        [helper.make_tensor_value_info("t", TensorProto.FLOAT, None)],
    )
    other = helper.make_graph(
        [helper.make_node("Neg", [feat], ["e"])],
        "else",
        [],
        [helper.make_tensor_value_info("e", TensorProto.FLOAT, None)],
    )
    g.input.append(helper.make_tensor_value_info("c", TensorProto.BOOL, []))
    g.node.append(
        helper.make_node("If", ["c"], ["y"], name="choose", then_branch=then, else_branch=other)
    )
    g.output.append(helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10]))
    low, report = convert_precision(b, "fp16")
    assert report.kept_nodes["If"] == 1
    node = next(n for n in low.graph.node if n.op_type == "If")
    then_low = next(a.g for a in node.attribute if a.name == "then_branch")
    read = then_low.node[0].input[0]
    assert read != gemm_out and read.endswith("_to_fp32")
    for flag in (True, False):
        feeds = {**_feeds(b), "c": np.array(flag)}
        assert relative_error(_session(b).run(None, feeds), _session(low).run(None, feeds)) < RTOL


NODE_CASE_PREFIXES = (
    "test_conv_with_strides_padding",
    "test_relu",
    "test_softmax_axis_1",
    "test_batchnorm_example",
    "test_gemm_default_single_elem_vector_bias",
    "test_maxpool_2d_default",
    "test_averagepool_2d_default",
    "test_globalaveragepool",
    "test_concat_2d_axis_0",
    "test_layer_normalization_2d_axis0",
    "test_matmul_2d",
    "test_resize_upsample_scales_nearest",
    "test_exp",
    "test_sigmoid",
    "test_leakyrelu",
    "test_transpose_default",
)


def test_fp16_on_onnx_node_cases() -> None:
    from onnx_node_cases import node_cases

    cases = {c.name: c for c in node_cases()}
    checked = 0
    for name in NODE_CASE_PREFIXES:
        case = cases[name]
        if not all(a.dtype == np.float32 for a in case.inputs):
            continue
        low, _ = convert_precision(case.model, "fp16")
        feeds = {vi.name: a for vi, a in zip(case.model.graph.input, case.inputs, strict=False)}
        got = _session(low).run(None, feeds)
        assert relative_error(list(case.outputs), got) < RTOL, name
        checked += 1
    assert checked == len(NODE_CASE_PREFIXES)


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
@pytest.mark.parametrize("name", sorted(NETS))
def test_lower_precision_builds_with_tensorrt_rtx(
    tmp_path: Path, name: str, precision: str
) -> None:
    pytest.importorskip("tensorrt_rtx")
    from trtimport import convert

    src = tmp_path / f"{name}.onnx"
    onnx.save(NETS[name](), str(src))
    engine = tmp_path / f"{name}.engine"
    result = convert(
        src,
        engine,
        import_options=ImportOptions(precision=PrecisionOptions(precision)),
        build_options=BuildOptions(progress=False),
        save_onnx_to=tmp_path / f"{name}-{precision}.onnx",
        backend="tensorrt_rtx",
    )
    assert engine.stat().st_size > 0
    assert [t.dtype for t in result.inputs] == ["float32"]
    assert any(f"--precision {precision}" in n for n in result.notes)
    sidecar = json.loads(engine.with_name(engine.name + ".json").read_text())
    assert sidecar["import_options"]["precision"]["precision"] == precision
    saved = onnx.load(str(tmp_path / f"{name}-{precision}.onnx"))
    elem = TensorProto.FLOAT16 if precision == "fp16" else TensorProto.BFLOAT16
    assert any(t.data_type == elem for t in saved.graph.initializer)


def test_reduced_precision_networks_are_created_strongly_typed() -> None:
    pytest.importorskip("tensorrt_rtx")
    from trtimport.core.backend import get_backend

    backend = get_backend("tensorrt_rtx")
    assert not backend.has_precision_flags  # no FP16/INT8 builder flags: the graph route only
    assert backend.strongly_typed_only  # every TensorRT-RTX network follows the ONNX types
    assert backend.network_flags == 0  # so no flag is needed (TensorRT 10 gets STRONGLY_TYPED)
