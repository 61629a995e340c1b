"""Dynamic inputs without flags: the batch becomes 1, other axes are one clear error."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper
from onnx_models import conv_relu, save

from trtimport import BuildOptions, ImportOptions, UsageError, convert, import_model
from trtimport.core.options import ShapeRange

pytest.importorskip("tensorrt_rtx")

QUIET = BuildOptions(progress=False)


def _two_inputs() -> onnx.ModelProto:
    """a[N, 4] and b[2, N] (the same symbol N) -> a + transpose(b)."""
    graph = helper.make_graph(
        [
            helper.make_node("Transpose", ["b"], ["bt"], perm=[1, 0]),
            helper.make_node("MatMul", ["a", "bt"], ["y"]),
        ],
        "two",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 4]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, [2, "N"]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_a_dynamic_batch_becomes_one_with_a_note_and_a_sidecar_record(tmp_path: Path) -> None:
    model = save(conv_relu(["N", 3, 8, 8]), tmp_path / "m.onnx")
    engine = tmp_path / "m.engine"
    result = convert(model, engine, build_options=QUIET)
    assert result.inputs[0].shape == (1, 3, 8, 8)
    assert result.outputs[0].shape == (1, 4, 6, 6)
    note = next(n for n in result.notes if "dynamic batch set to 1" in n)
    assert "'x' [1, 3, 8, 8]" in note and "--input x:1x3x8x8" in note and "--batch" in note
    sidecar = json.loads(engine.with_name("m.engine.json").read_text())
    assert sidecar["default_input_shapes"] == {"x": [1, 3, 8, 8]}


def test_an_axis_sharing_the_batch_symbol_is_a_batch_too(tmp_path: Path) -> None:
    model = save(_two_inputs(), tmp_path / "two.onnx")
    with import_model(model) as imported:
        assert {t.name: t.shape for t in imported.inputs} == {"a": (1, 4), "b": (2, 1)}
        assert imported.context.default_shapes == {"a": (1, 4), "b": (2, 1)}


def test_other_dynamic_axes_are_one_error_with_an_input_line_to_edit(tmp_path: Path) -> None:
    model = save(conv_relu(["N", 3, "H", "W"]), tmp_path / "m.onnx")
    with pytest.raises(UsageError) as info:
        import_model(model)
    message = str(info.value)
    assert "'x' [-1, 3, -1, -1]: dimension(s) 2, 3" in message
    assert "--input x:1x3xD2xD3" in message and "--shapes NAME:MIN/OPT/MAX" in message


@pytest.mark.parametrize(
    "options",
    [
        ImportOptions(input_shapes={"x": (2, 3, 8, 8)}),
        ImportOptions(batch=(1, 2, 4)),
        ImportOptions(profiles=[{"x": ShapeRange((1, 3, 8, 8), (2, 3, 8, 8), (4, 3, 8, 8))}]),
    ],
    ids=["input", "batch", "shapes"],
)
def test_flags_still_override_the_default(tmp_path: Path, options: ImportOptions) -> None:
    model = save(conv_relu(["N", 3, 8, 8]), tmp_path / "m.onnx")
    with import_model(model, options=options) as imported:
        assert imported.context.default_shapes == {}
        assert not any("dynamic batch set to 1" in n for n in imported.notes)
        assert imported.inputs[0].shape[0] in (2, -1)
