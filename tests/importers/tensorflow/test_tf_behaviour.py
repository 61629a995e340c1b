"""Errors, names, flags and reference runners of the TensorFlow importers (real TF models)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from trtimport import (
    ImportOptions,
    OutputMarkingError,
    TensorFlowOptions,
    UnsupportedLayerError,
    UsageError,
    convert,
)
from trtimport.cli import main
from trtimport.plugins.manager import load_plugins

from .test_tf_accuracy import EXPECTED_FORMAT, run_onnx
from .tf_models import FORMATS, REQUIRES_TF, SavedFiles, relative_error

pytestmark = [
    pytest.mark.tf,
    REQUIRES_TF,
    # Keras 3.15 converts TensorFlow tensors with np.array(x, copy=False) internally.
    pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning"),
]


def cli_error(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run the CLI in-process; it must fail with exit code 1 and one error message."""
    code = main(args)
    err = capsys.readouterr().err
    assert code == 1, err
    assert err.startswith("error: ") and "Traceback" not in err
    return err


def test_corrupt_saved_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "broken_saved_model"
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"\x08\x01\x12\xff\xff\xff\x0fgarbage")
    engine, onnx_out = tmp_path / "out.engine", tmp_path / "out.onnx"
    err = cli_error([str(folder), "-o", str(engine), "--save-onnx", str(onnx_out)], capsys)
    assert "not a valid SavedModel" in err and str(folder) in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken_saved_model"]


def test_truncated_frozen_graph(
    tf_saved: Callable[[str], SavedFiles], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tf_saved("functional").paths["frozen_pb"].read_bytes()
    truncated = tmp_path / "truncated.pb"
    truncated.write_bytes(data[: len(data) // 2])
    err = cli_error([str(truncated), "-o", str(tmp_path / "out.engine")], capsys)
    assert "truncated.pb" in err and "GraphDef" in err
    assert [p.name for p in tmp_path.iterdir()] == ["truncated.pb"]


def test_non_model_h5(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import h5py

    path = tmp_path / "measurements.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("values", data=np.arange(10.0))
    err = cli_error([str(path), "-o", str(tmp_path / "out.engine")], capsys)
    assert "measurements.h5" in err and "Keras cannot load this file as a model" in err
    assert [p.name for p in tmp_path.iterdir()] == ["measurements.h5"]


def test_unsupported_ops_are_all_reported(tmp_path: Path) -> None:
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32, name="x")])
    def special(x: tf.Tensor) -> tf.Tensor:
        a = tf.math.lgamma(x + 3.0, name="log_gamma")
        b = tf.math.digamma(x + 3.0, name="di_gamma")
        return tf.nn.relu(a + b)

    frozen = convert_variables_to_constants_v2(special.get_concrete_function())
    pb = tmp_path / "special.pb"
    pb.write_bytes(frozen.graph.as_graph_def().SerializeToString())
    with pytest.raises(UnsupportedLayerError) as info:
        convert(pb, tmp_path / "x.engine", build=False)
    assert info.value.layers == ["log_gamma (Lgamma)", "di_gamma (Digamma)"]
    assert "2 TensorFlow op(s)" in str(info.value)
    assert not (tmp_path / "x.engine").exists()


@pytest.mark.parametrize("opset", [0, 19])
def test_opset_beyond_tf2onnx_is_usage_error(
    tf_saved: Callable[[str], SavedFiles], opset: int
) -> None:
    with pytest.raises(UsageError, match="opsets up to 18"):
        options = ImportOptions(opset=opset)
        convert(tf_saved("functional").paths["keras"], import_options=options, build=False)


def test_opset_18_inputs_as_nchw_and_tf_output_names(
    tf_saved: Callable[[str], SavedFiles], tmp_path: Path
) -> None:
    """NHWC input transposed to NCHW, opset 18, outputs named the TensorFlow way."""
    import onnx

    saved = tf_saved("functional")
    onnx_path = tmp_path / "nchw.onnx"
    options = ImportOptions(
        input_shapes={"input": (1, 3, 32, 32)},
        outputs=["Identity"],
        opset=18,
        importer_options={"tensorflow": TensorFlowOptions(inputs_as_nchw=("input",))},
    )
    result = convert(
        saved.paths["frozen_pb"], save_onnx_to=onnx_path, import_options=options, build=False
    )
    assert [t.name for t in result.inputs] == ["input"]
    assert [t.shape for t in result.inputs] == [(1, 3, 32, 32)]
    assert [t.name for t in result.outputs] == ["Identity"]
    model = onnx.load(str(onnx_path))
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [18]
    x_nchw = saved.x.transpose(0, 3, 1, 2).copy()
    _, actual = run_onnx(onnx_path, x_nchw)
    assert relative_error(actual[0], saved.expected[0]) <= 1e-4
    importer = load_plugins().importers["tensorflow"].importer
    with importer.reference_runner(saved.paths["frozen_pb"], options) as runner:
        assert runner.inputs()[0].shape == (None, 3, 32, 32)
        reference = runner.infer({"input": x_nchw}, outputs=["Identity"])
    assert relative_error(actual[0], reference["Identity"]) <= 1e-4


def test_unknown_nchw_input_is_usage_error(tf_saved: Callable[[str], SavedFiles]) -> None:
    options = ImportOptions(importer_options={"tensorflow": TensorFlowOptions(("nope",))})
    with pytest.raises(UsageError, match="--inputs-as-nchw names 'nope'"):
        convert(tf_saved("functional").paths["keras"], import_options=options, build=False)


def test_dynamic_batch_becomes_one_with_a_note(tf_saved: Callable[[str], SavedFiles]) -> None:
    result = convert(tf_saved("functional").paths["keras"], build=False)
    assert result.inputs[0].shape == (1, 32, 32, 3)
    assert any(n.startswith("dynamic batch set to 1 for input(s) 'image'") for n in result.notes)


@pytest.mark.parametrize("fmt", FORMATS)
def test_reference_runner_matches_tensorflow(
    tf_saved: Callable[[str], SavedFiles], fmt: str
) -> None:
    saved = tf_saved("functional")
    importer = load_plugins().importers[EXPECTED_FORMAT[fmt]].importer
    with importer.reference_runner(saved.paths[fmt], ImportOptions()) as runner:
        names = [o.name for o in runner.outputs()]
        assert len(runner.inputs()) == 1
        feed = {runner.inputs()[0].name: saved.x}
        results = runner.infer(feed)
    assert list(results) == names
    expected = saved.expected_outputs(fmt, names)
    for actual, want in zip(results.values(), expected, strict=True):
        assert relative_error(actual, want) <= 1e-5


def test_unknown_frozen_graph_output(tf_saved: Callable[[str], SavedFiles]) -> None:
    options = ImportOptions(input_shapes={"input": (1, 32, 32, 3)}, outputs=["no/such/node"])
    with pytest.raises(OutputMarkingError, match="no tensor 'no/such/node'"):
        convert(tf_saved("functional").paths["frozen_pb"], import_options=options, build=False)


def test_saved_model_pb_file_means_its_folder(tf_saved: Callable[[str], SavedFiles]) -> None:
    saved = tf_saved("sequential")
    options = ImportOptions(input_shapes={"input": saved.x.shape})
    result = convert(
        saved.paths["saved_model"] / "saved_model.pb", import_options=options, build=False
    )
    assert result.format == "tensorflow"
    assert [t.name for t in result.outputs] == ["output_0"]


def test_dynamic_batch_profile_with_tensorflow_name(
    tf_saved: Callable[[str], SavedFiles], tmp_path: Path
) -> None:
    from trtimport import BuildOptions
    from trtimport.core.options import ShapeRange

    saved = tf_saved("sequential")
    shape = saved.x.shape[1:]
    profile = {"input:0": ShapeRange((1, *shape), (2, *shape), (4, *shape))}
    result = convert(
        saved.paths["frozen_pb"],
        tmp_path / "dynamic.engine",
        import_options=ImportOptions(profiles=[profile]),
        build_options=BuildOptions(progress=False),
    )
    assert [(t.name, t.shape) for t in result.inputs] == [("input:0", (-1, *shape))]
    assert (tmp_path / "dynamic.engine").stat().st_size > 0
