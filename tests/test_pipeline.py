"""convert() and import_model() end to end with tensorrt_rtx on CPU."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper
from onnx_models import conv_relu, save

from trtimport import (
    BuildOptions,
    EngineBuildError,
    ImportOptions,
    OutputMarkingError,
    ShapeError,
    UsageError,
    convert,
    import_model,
)
from trtimport.core.options import ShapeRange

pytest.importorskip("tensorrt_rtx")

QUIET = BuildOptions(progress=False)


def test_convert_writes_engine_sidecar_and_returns_the_facts(tmp_path: Path) -> None:
    model = save(conv_relu(), tmp_path / "m.onnx")
    engine = tmp_path / "out" / "m.engine"
    result = convert(model, engine, build_options=BuildOptions(progress=False, workspace=1 << 28))
    assert result.engine == engine and engine.is_file()
    assert result.engine_bytes == engine.stat().st_size > 0
    assert [(t.name, t.shape, t.dtype) for t in result.inputs] == [("x", (1, 3, 8, 8), "float32")]
    assert [(t.name, t.shape) for t in result.outputs] == [("y", (1, 4, 6, 6))]
    assert result.layers == 2
    assert result.build_seconds is not None and result.build_seconds > 0
    assert result.files_written == [engine, engine.with_name("m.engine.json")]
    side = json.loads(engine.with_name("m.engine.json").read_text())
    assert side["backend"]["name"] == "tensorrt_rtx"
    [entry] = side["source"]["files"]
    assert entry["path"] == str(model)
    assert entry["sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    assert entry["bytes"] == model.stat().st_size
    assert entry["mtime_ns"] == model.stat().st_mtime_ns
    assert side["engine"] == {"file": "m.engine", "bytes": engine.stat().st_size}
    assert side["build_options"]["workspace"] == 1 << 28
    assert side["build_options"]["builder_threads"] == len(os.sched_getaffinity(0))
    assert side["targets"] == ["sm86", "sm89", "sm120"]
    assert side["outputs"] == [{"name": "y", "shape": [1, 4, 6, 6], "dtype": "float32"}]
    assert result.to_dict()["engine_bytes"] == result.engine_bytes
    assert not [p for p in engine.parent.iterdir() if p.name.endswith(".tmp")]


def test_targets_reach_the_builder_config_and_sidecar(tmp_path: Path) -> None:
    model = save(conv_relu(), tmp_path / "m.onnx")
    result = convert(
        model, tmp_path / "m.engine", build_options=BuildOptions(targets=["8.6"], progress=False)
    )
    assert result.targets == ["sm86"]
    side = json.loads((tmp_path / "m.engine.json").read_text())
    assert side["targets"] == ["sm86"]


def _fp8_dequantize() -> onnx.ModelProto:
    """x: float8e4m3fn[4] -> DequantizeLinear(scale 2) -> y: float[4]."""
    graph = helper.make_graph(
        [helper.make_node("DequantizeLinear", ["x", "scale"], ["y"])],
        "fp8",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT8E4M3FN, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
        [helper.make_tensor("scale", TensorProto.FLOAT, [], [2.0])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])


def test_portable_targets_the_build_left_out_are_not_claimed(tmp_path: Path) -> None:
    # sm86 has no FP8: the portable build quietly drops it, an explicit --target sm86 fails.
    model = save(_fp8_dequantize(), tmp_path / "q.onnx")
    result = convert(model, tmp_path / "q.engine", build_options=QUIET)
    assert result.targets == ["sm89", "sm120"]
    assert json.loads((tmp_path / "q.engine.json").read_text())["targets"] == ["sm89", "sm120"]
    assert any("left sm80, sm86 out" in n and "fp8_e4m3" in n for n in result.notes)
    with pytest.raises(EngineBuildError, match="sm86"):
        convert(
            model,
            tmp_path / "q86.engine",
            build_options=BuildOptions(targets=["sm86"], progress=False),
        )


def test_runtime_cache_path_is_recorded_for_rtx(tmp_path: Path) -> None:
    model = save(conv_relu(), tmp_path / "m.onnx")
    cache = tmp_path / "kernels.cache"
    convert(model, tmp_path / "m.engine", build_options=BuildOptions(cache=cache, progress=False))
    side = json.loads((tmp_path / "m.engine.json").read_text())
    assert side["build_options"]["cache"] == {"kind": "runtime", "path": str(cache)}
    assert not cache.exists()  # filled by the runner on a GPU, not by the build


def test_import_model_returns_the_populated_network(tmp_path: Path) -> None:
    model = save(conv_relu(), tmp_path / "m.onnx")
    with import_model(model) as imported:
        assert imported.format == "onnx"
        assert imported.network.num_layers == 2
        assert imported.network.get_output(0).name == "y"


def test_output_flag_marks_any_tensor(tmp_path: Path) -> None:
    model = save(conv_relu(), tmp_path / "m.onnx")
    result = convert(
        model,
        tmp_path / "m.engine",
        import_options=ImportOptions(outputs=["c", "y"]),
        build_options=QUIET,
    )
    assert [t.name for t in result.outputs] == ["c", "y"]


def test_unknown_output_lists_available_tensors(tmp_path: Path) -> None:
    model = save(conv_relu(), tmp_path / "m.onnx")
    with pytest.raises(
        OutputMarkingError, match=r"no tensor named 'nope'.*Available tensors: x, c, y"
    ):
        import_model(model, options=ImportOptions(outputs=["nope"]))


def test_input_override_fixes_a_dynamic_input(tmp_path: Path) -> None:
    model = save(conv_relu(["N", 3, "H", "W"]), tmp_path / "m.onnx")
    result = convert(
        model,
        tmp_path / "m.engine",
        import_options=ImportOptions(input_shapes={"x": (2, 3, 16, 16)}),
        build_options=QUIET,
    )
    assert result.inputs[0].shape == (2, 3, 16, 16)
    assert result.outputs[0].shape == (2, 4, 14, 14)


def test_input_override_may_not_change_fixed_dims(tmp_path: Path) -> None:
    model = save(conv_relu(), tmp_path / "m.onnx")
    with pytest.raises(ShapeError, match="changes fixed dimensions"):
        import_model(model, options=ImportOptions(input_shapes={"x": (1, 3, 9, 9)}))


def test_input_override_of_unknown_input(tmp_path: Path) -> None:
    model = save(conv_relu(), tmp_path / "m.onnx")
    with pytest.raises(UsageError, match="inputs are x"):
        import_model(model, options=ImportOptions(input_shapes={"image": (1, 3, 8, 8)}))


def test_shapes_build_a_dynamic_engine(tmp_path: Path) -> None:
    model = save(conv_relu(["N", 3, 8, 8]), tmp_path / "m.onnx")
    profile = {"x": ShapeRange((1, 3, 8, 8), (4, 3, 8, 8), (8, 3, 8, 8))}
    result = convert(
        model,
        tmp_path / "m.engine",
        import_options=ImportOptions(profiles=[profile]),
        build_options=QUIET,
    )
    assert result.inputs[0].shape == (-1, 3, 8, 8)
    side = json.loads((tmp_path / "m.engine.json").read_text())
    assert side["profiles"] == [
        {"x": {"min": [1, 3, 8, 8], "opt": [4, 3, 8, 8], "max": [8, 3, 8, 8]}}
    ]


def test_no_build_writes_only_the_onnx(tmp_path: Path) -> None:
    model = save(conv_relu(), tmp_path / "m.onnx")
    saved = tmp_path / "out" / "copy.onnx"
    result = convert(model, tmp_path / "m.engine", save_onnx_to=saved, build=False)
    assert result.engine is None and result.files_written == [saved]
    assert saved.read_bytes() == model.read_bytes()
    assert not (tmp_path / "m.engine").exists()


def test_batch_makes_the_first_dimension_dynamic(tmp_path: Path) -> None:
    model = save(conv_relu(), tmp_path / "m.onnx")
    result = convert(
        model,
        tmp_path / "m.engine",
        import_options=ImportOptions(batch=(1, 4, 8)),
        build_options=QUIET,
    )
    assert result.inputs[0].shape == (-1, 3, 8, 8)
    side = json.loads((tmp_path / "m.engine.json").read_text())
    assert side["profiles"] == [
        {"x": {"min": [1, 3, 8, 8], "opt": [4, 3, 8, 8], "max": [8, 3, 8, 8]}}
    ]


def test_batch_and_shapes_together_are_refused(tmp_path: Path) -> None:
    model = save(conv_relu(["N", 3, 8, 8]), tmp_path / "m.onnx")
    profile = {"x": ShapeRange((1, 3, 8, 8), (1, 3, 8, 8), (2, 3, 8, 8))}
    with pytest.raises(UsageError, match="cannot be combined with --shapes"):
        import_model(model, options=ImportOptions(batch=(1, 1, 2), profiles=[profile]))


def _shape_input_model(op: str, second: str) -> onnx.ModelProto:
    """x[2,3,4] -> OP(x, SECOND) -> y, where SECOND is an int64[2] or int64[3] graph input."""
    n = 2 if op == "Reshape" else 3
    graph = helper.make_graph(
        [helper.make_node(op, ["x", second], ["y"])],
        op.lower(),
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4]),
            helper.make_tensor_value_info(second, TensorProto.INT64, [n]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_shape_tensor_input_needs_values_and_names_both_flags(tmp_path: Path) -> None:
    model = save(_shape_input_model("Reshape", "shape"), tmp_path / "r.onnx")
    with pytest.raises(UsageError, match=r"'shape'.*--input-values shape:.*--shapes shape:"):
        convert(model, tmp_path / "r.engine", build_options=QUIET)
    assert not (tmp_path / "r.engine").exists()


def test_input_values_build_and_are_recorded_in_the_sidecar(tmp_path: Path) -> None:
    model = save(_shape_input_model("Reshape", "shape"), tmp_path / "r.onnx")
    engine = tmp_path / "r.engine"
    convert(
        model,
        engine,
        import_options=ImportOptions(input_values={"shape": (4, -1)}),
        build_options=QUIET,
    )
    sidecar = json.loads(engine.with_name("r.engine.json").read_text())
    assert sidecar["shape_tensor_inputs"] == ["shape"]
    assert sidecar["import_options"]["input_values"] == {"shape": [4, -1]}
    assert sidecar["profiles"] == [{"shape": {"min": [4, -1], "opt": [4, -1], "max": [4, -1]}}]


def test_shapes_give_a_shape_tensor_input_a_value_range(tmp_path: Path) -> None:
    model = save(_shape_input_model("Tile", "repeats"), tmp_path / "t.onnx")
    values = ShapeRange((1, 1, 1), (2, 2, 2), (4, 4, 4))
    result = convert(
        model,
        tmp_path / "t.engine",
        import_options=ImportOptions(profiles=[{"repeats": values}]),
        build_options=QUIET,
    )
    assert result.engine_bytes


@pytest.mark.parametrize(
    ("values", "error", "match"),
    [
        ({"x": (4,)}, UsageError, r"shape \[2, 3, 4\], which 1 value\(s\) do not fill"),
        ({"shape": (4, -1, 1)}, ShapeError, "holding 2 value"),
        ({"nope": (1,)}, UsageError, "--input-values names 'nope'"),
    ],
)
def test_wrong_input_values_are_clear_errors(
    tmp_path: Path, values: dict[str, tuple[int, ...]], error: type[Exception], match: str
) -> None:
    model = save(_shape_input_model("Reshape", "shape"), tmp_path / "r.onnx")
    with pytest.raises(error, match=match):
        import_model(model, options=ImportOptions(input_values=values))


def test_input_values_of_a_plain_input_need_the_rewrite(tmp_path: Path) -> None:
    model = save(_shape_input_model("Reshape", "shape"), tmp_path / "r.onnx")
    options = ImportOptions(input_values={"x": (4,)}, rewrite=False)
    with pytest.raises(UsageError, match=r"'x' is not a shape tensor.*--input x:SHAPE"):
        import_model(model, options=options)


def test_a_work_folder_is_made_only_when_an_importer_needs_one(tmp_path: Path) -> None:
    model = save(conv_relu(), tmp_path / "m.onnx")
    # An ONNX file is parsed as it is: no temporary folder at all.
    with import_model(model) as imported:
        assert imported.onnx_path == model
        assert not imported.context.work.made
    # A rewrite (here the batch dimension) goes through the work folder, removed on close.
    with import_model(model, options=ImportOptions(batch=(1, 2, 4))) as imported:
        assert imported.context.work.made
        folder = imported.context.workdir
        assert imported.onnx_path is not None and imported.onnx_path.parent == folder
        assert folder.stat().st_mode & 0o777 == 0o700
    assert not folder.exists()


def test_rebuilding_reuses_the_digest_of_an_unchanged_model(tmp_path: Path) -> None:
    model = save(conv_relu(), tmp_path / "m.onnx")
    engine = tmp_path / "m.engine"
    side = engine.with_name("m.engine.json")
    convert(model, engine, build_options=QUIET)
    real = hashlib.sha256(model.read_bytes()).hexdigest()
    # Pretend the first build hashed the file well after its last change, and plant a digest
    # the second build can only have taken from the sidecar.
    data = json.loads(side.read_text())
    data["source"]["files"][0] |= {"sha256": "0" * 64, "hashed_at_ns": time.time_ns() + 10**10}
    side.write_text(json.dumps(data))
    convert(model, engine, build_options=QUIET)
    assert json.loads(side.read_text())["source"]["files"][0]["sha256"] == "0" * 64
    # A changed model is hashed again.
    model.write_bytes(model.read_bytes())
    convert(model, engine, build_options=QUIET)
    assert json.loads(side.read_text())["source"]["files"][0]["sha256"] == real


_LEFTOVERS = """
import gc, sys
from trtimport import ModelParseError, import_model
from trtimport.core.importer import ImportContext

bad, good = sys.argv[1], sys.argv[2]


def fail():
    try:
        import_model(bad)
    except ModelParseError as err:
        keep = err  # this frame -> the error -> its traceback -> this frame: a cycle
        return [keep]


gc.disable()  # leftovers stay until someone collects them
for _ in range(3):
    fail()
with import_model(good):
    contexts = [o for o in gc.get_objects() if isinstance(o, ImportContext)]
    print(len(contexts))
"""


def test_earlier_failed_imports_are_freed_before_the_next_builder(tmp_path: Path) -> None:
    """Their builders, left to the garbage collector, could be destroyed inside a TensorRT call
    of the next import, which deadlocks TensorRT-RTX (pipeline._collect_earlier_imports)."""
    good = save(conv_relu(), tmp_path / "good.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(good.read_bytes()[:200])
    proc = subprocess.run(
        [sys.executable, "-c", _LEFTOVERS, str(bad), str(good)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["1"]  # only the live import's context
