"""Graphs TensorRT refuses, rewritten (and checked on ONNX Runtime) until they build."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx_models import if_selected_by_input, ort_fused, save

from trtimport import BuildOptions, ImportOptions, ModelParseError, convert
from trtimport.onnxtools.passes.contrib import MS_DOMAIN, replace_contrib_ops
from trtimport.onnxtools.rescue import RewriteNotVerified, verify_rewrite

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx_graphsurgeon")
pytest.importorskip("tensorrt_rtx")

QUIET = BuildOptions(progress=False)


def _run(model: onnx.ModelProto, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    return session.run(None, feed)


def test_onnx_runtime_fused_ops_become_standard_and_build(tmp_path: Path) -> None:
    fused = ort_fused(tmp_path)
    ops = {(n.domain, n.op_type) for n in onnx.load(str(fused)).graph.node}
    assert {(MS_DOMAIN, "FusedConv"), (MS_DOMAIN, "Gelu"), (MS_DOMAIN, "FusedMatMul")} <= ops
    engine = tmp_path / "f.engine"
    kept = tmp_path / "kept.onnx"
    result = convert(fused, engine, build_options=QUIET, save_onnx_to=kept)
    assert result.engine_bytes
    assert any("rewrote it" in n for n in result.notes)
    steps = json.loads(engine.with_name("f.engine.json").read_text())["rewrites"]["rescue"]
    details = [s["detail"] for s in steps]
    for op in ("FusedConv", "Gelu", "FusedMatMul"):
        assert f"1 com.microsoft.{op} as standard ONNX" in details
    assert steps[-1]["step"] == "verified"
    rewritten = onnx.load(str(kept))
    assert all(n.domain != MS_DOMAIN for n in rewritten.graph.node)
    x = np.random.default_rng(1).standard_normal((1, 3, 6, 6)).astype(np.float32)
    want = _run(onnx.load(str(fused)), {"x": x})[0]
    np.testing.assert_allclose(_run(rewritten, {"x": x})[0], want, rtol=1e-5, atol=1e-5)


def test_no_rewrite_reports_the_refused_nodes(tmp_path: Path) -> None:
    fused = ort_fused(tmp_path)
    with pytest.raises(ModelParseError) as info:
        convert(
            fused,
            tmp_path / "f.engine",
            build_options=QUIET,
            import_options=ImportOptions(rewrite=False),
        )
    message = str(info.value)
    assert "FusedConv" in message and "FusedMatMul" in message
    assert "trtimport tried: nothing (--no-rewrite)" in message
    assert not (tmp_path / "f.engine").exists()


def _contrib(op: str, inputs: dict[str, np.ndarray], **attrs: object) -> onnx.ModelProto:
    names = list(inputs)
    feeds = [n for n in names if not n.startswith("c_")]
    graph = helper.make_graph(
        [helper.make_node(op, names, ["y"], domain=MS_DOMAIN, **attrs)],
        op,
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, inputs[n].shape) for n in feeds],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(inputs[n], n) for n in names if n.startswith("c_")],
    )
    return helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(MS_DOMAIN, 1)],
    )


_RNG = np.random.default_rng(0)
_X = (_RNG.standard_normal((2, 3, 8)) * 3).astype(np.float32)
_V = _RNG.standard_normal(8).astype(np.float32)


@pytest.mark.parametrize(
    ("op", "inputs", "attrs"),
    [
        ("Gelu", {"x": _X}, {}),
        ("BiasGelu", {"x": _X, "c_b": _V}, {}),
        ("FastGelu", {"x": _X, "c_b": _V}, {}),
        ("QuickGelu", {"x": _X}, {"alpha": 1.5}),
        (
            "SkipLayerNormalization",
            {"x": _X, "s": _X[::-1].copy(), "c_g": _V, "c_b": _V + 1},
            {"epsilon": 1e-5},
        ),
        (
            "FusedMatMul",
            {"x": _X, "c_m": _RNG.standard_normal((2, 5, 8)).astype(np.float32)},
            {"transB": 1, "alpha": 0.5},
        ),
        (
            "FusedConv",
            {
                "x": _RNG.standard_normal((1, 3, 5, 5)).astype(np.float32),
                "c_w": _RNG.standard_normal((4, 3, 3, 3)).astype(np.float32),
            },
            {"activation": "LeakyRelu", "activation_params": [0.1]},
        ),
        (
            "FusedConv",
            {
                "x": _RNG.standard_normal((1, 3, 5, 5)).astype(np.float32),
                "c_w": _RNG.standard_normal((4, 3, 3, 3)).astype(np.float32),
            },
            {"activation": "Clip", "activation_params": [-0.5, 0.5]},
        ),
    ],
    ids=[
        "Gelu",
        "BiasGelu",
        "FastGelu",
        "QuickGelu",
        "SkipLayerNorm",
        "FusedMatMul",
        "FusedConv-LeakyRelu",
        "FusedConv-Clip",
    ],
)
def test_each_contrib_op_equals_onnx_runtimes_own(
    op: str, inputs: dict[str, np.ndarray], attrs: dict[str, object]
) -> None:
    model = _contrib(op, inputs, **attrs)
    standard, replaced, left = replace_contrib_ops(model)
    assert replaced == {op: 1} and left == []
    assert all(n.domain != MS_DOMAIN for n in standard.graph.node)
    feed = {k: v for k, v in inputs.items() if not k.startswith("c_")}
    want = _run(model, feed)[0]
    np.testing.assert_allclose(_run(standard, feed)[0], want, rtol=1e-5, atol=1e-5)


def test_a_contrib_op_without_a_standard_form_is_left_and_named() -> None:
    model = _contrib("FusedMatMul", {"x": _X, "c_m": _X.copy()}, transBatchB=1)
    _, replaced, left = replace_contrib_ops(model)
    assert replaced == {} and "FusedMatMul): no exact standard form" in left[0]


def test_input_values_pin_a_branch_selecting_input(tmp_path: Path) -> None:
    model = save(if_selected_by_input(), tmp_path / "if.onnx")
    engine, kept = tmp_path / "if.engine", tmp_path / "kept.onnx"
    result = convert(
        model,
        engine,
        import_options=ImportOptions(input_values={"mode": (1,)}),
        build_options=QUIET,
        save_onnx_to=kept,
    )
    assert [t.name for t in result.inputs] == ["x"]
    steps = json.loads(engine.with_name("if.engine.json").read_text())["rewrites"]["rescue"]
    assert steps[0] == {"step": "pin-value", "detail": "input 'mode' = 1"}
    assert "1 If node(s) with a constant condition replaced by their branch" in steps[1]["detail"]
    rewritten = onnx.load(str(kept))
    assert not any(n.op_type == "If" for n in rewritten.graph.node)
    # Both outputs of the branch survive (onnx-graphsurgeon's own flattening drops the second).
    x = np.linspace(-2, 2, 4, dtype=np.float32).reshape(1, 4)
    y, z = _run(rewritten, {"x": x})
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    np.testing.assert_array_equal(z, x * 2)


def test_a_rewrite_that_changes_outputs_is_refused() -> None:
    original = if_selected_by_input()
    wrong = if_selected_by_input()
    wrong.graph.node[1].attribute[0].g.node[0].op_type = "Abs"  # else branch: Sigmoid -> Abs
    with pytest.raises(RewriteNotVerified, match="output 'y' differs"):
        verify_rewrite(original, wrong, {}, {})
