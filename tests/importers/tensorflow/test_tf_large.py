"""TensorFlow models converted in tf2onnx's large-model form: the weights beside the ONNX.

The size limit is lowered in-process, so that the small test models go the way a model of
several GB goes; what trtimport writes and TensorRT-RTX parses is then compared with
TensorFlow's own outputs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from trtimport import BuildOptions, ImportOptions, UsageError, convert, import_model
from trtimport.importers.tensorflow import convert as tf_convert
from trtimport.onnxtools.external_data import check_external_data, external_data_references

from .test_tf_accuracy import TOLERANCE, run_onnx
from .tf_models import REQUIRES_TF, SavedFiles, relative_error

pytestmark = [
    pytest.mark.tf,
    REQUIRES_TF,
    # Keras 3.15 converts TensorFlow tensors with np.array(x, copy=False) internally.
    pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning"),
]


@pytest.fixture
def every_model_large(monkeypatch: pytest.MonkeyPatch) -> None:
    """Convert every model in the large-model form."""
    monkeypatch.delenv(tf_convert.LARGE_MODEL_ENV, raising=False)
    monkeypatch.setattr(tf_convert, "LARGE_MODEL_BYTES", 1)


def assert_matches(saved: SavedFiles, onnx_path: Path, x: np.ndarray) -> None:
    """ONNX Runtime on ``onnx_path`` gives TensorFlow's outputs for ``saved.x``."""
    _, actual = run_onnx(onnx_path, x)
    errors = [relative_error(a, e) for a, e in zip(actual, saved.expected, strict=True)]
    assert max(errors) <= TOLERANCE


@pytest.mark.usefixtures("every_model_large")
@pytest.mark.parametrize("fmt", ["saved_model", "keras", "h5", "frozen_pb"])
def test_large_form_keeps_weights_beside_the_onnx(
    tf_saved: Callable[[str], SavedFiles], fmt: str
) -> None:
    saved = tf_saved("functional")
    options = ImportOptions(input_shapes={saved.input_names[fmt]: saved.x.shape})
    with import_model(saved.paths[fmt], options=options) as imported:
        onnx_path = imported.onnx_path
        assert onnx_path is not None
        data = onnx_path.with_name(onnx_path.name + ".data")
        references = external_data_references(onnx_path)
        assert references and {location for _, location in references} == {data.name}
        check_external_data(onnx_path)  # every location inside the model's folder
        # The dense layer's 92,160 weights are outside; the graph file holds no such bulk.
        assert data.stat().st_size >= 92160 * 4 > onnx_path.stat().st_size
        assert imported.num_layers > 0  # TensorRT-RTX parsed it
        assert any(n.startswith("a large model: its weights") for n in imported.notes)
        assert_matches(saved, onnx_path, saved.x)


@pytest.mark.usefixtures("every_model_large")
def test_large_saved_model_builds_with_batch_and_saves_onnx(
    tf_saved: Callable[[str], SavedFiles], tmp_path: Path
) -> None:
    """``--batch`` and ``--save-onnx`` take the weight-less intermediate; the engine builds."""
    saved = tf_saved("functional")
    engine, onnx_path = tmp_path / "large.engine", tmp_path / "large.onnx"
    result = convert(
        saved.paths["saved_model"],
        engine,
        import_options=ImportOptions(batch=(1, 2, 4)),
        build_options=BuildOptions(progress=False),
        save_onnx_to=onnx_path,
    )
    assert engine.stat().st_size > 0
    assert result.inputs[0].shape == (-1, 32, 32, 3)
    # Small enough for one file: --save-onnx takes the weights in.
    assert external_data_references(onnx_path) == []
    batch = np.concatenate([saved.x, saved.x])
    _, (probs, features) = run_onnx(onnx_path, batch)
    for actual, expected in zip((probs, features), saved.expected, strict=True):
        assert relative_error(actual[1:], expected) <= TOLERANCE


def test_small_model_is_not_converted_in_large_form(
    tf_saved: Callable[[str], SavedFiles], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(tf_convert.LARGE_MODEL_ENV, raising=False)
    saved = tf_saved("functional")
    path = saved.paths["saved_model"]
    assert not tf_convert.is_large(path)
    with import_model(path) as imported:
        onnx_path = imported.onnx_path
        assert onnx_path is not None
        assert external_data_references(onnx_path) == []
        assert not onnx_path.with_name(onnx_path.name + ".data").exists()
        assert not any(n.startswith("a large model") for n in imported.notes)


def test_large_model_limit_from_the_environment(
    tf_saved: Callable[[str], SavedFiles], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tf_saved("functional").paths["saved_model"]
    size = tf_convert.model_bytes(path)
    assert size > (path / "saved_model.pb").stat().st_size  # the variables count too
    monkeypatch.setenv(tf_convert.LARGE_MODEL_ENV, str(size))
    assert tf_convert.is_large(path)
    monkeypatch.setenv(tf_convert.LARGE_MODEL_ENV, str(size + 1))
    assert not tf_convert.is_large(path)
    monkeypatch.setenv(tf_convert.LARGE_MODEL_ENV, "2G")
    with pytest.raises(UsageError, match="TRTIMPORT_TF_LARGE_MODEL_BYTES='2G'"):
        tf_convert.is_large(path)
