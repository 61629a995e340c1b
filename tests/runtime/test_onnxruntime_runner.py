"""OnnxRuntimeRunner against plain onnxruntime sessions and hand-checked intermediate tensors."""

from __future__ import annotations

import numpy as np
import pytest
from runtime_models import CNN_TENSORS, make_cnn, ort_outputs

from trtimport.errors import ModelParseError, OutputMarkingError, UsageError
from trtimport.runtime.onnxruntime import OnnxRuntimeRunner


@pytest.fixture
def digit() -> np.ndarray:
    return np.random.default_rng(3).random((1, 1, 28, 28), dtype=np.float32)


def test_outputs_match_onnxruntime(tmp_path, digit):
    path = make_cnn(tmp_path / "cnn.onnx")
    with OnnxRuntimeRunner(path) as runner:
        assert [s.name for s in runner.inputs()] == ["x"]
        assert runner.inputs()[0].shape == (1, 1, 28, 28)
        assert runner.outputs()[0].dtype == np.float32
        got = runner.infer({"x": digit})
    np.testing.assert_array_equal(got["prob"], ort_outputs(path, {"x": digit})["prob"])


def test_intermediate_tensors_are_consistent(tmp_path, digit):
    path = make_cnn(tmp_path / "cnn.onnx")
    with OnnxRuntimeRunner(path) as runner:
        assert runner.tensor_names() == CNN_TENSORS
        assert runner.producer("c2") == ("conv2", "Conv")
        out = runner.infer({"x": digit}, ["c1", "r1", "logits", "prob"])
    np.testing.assert_array_equal(out["r1"], np.maximum(out["c1"], 0))
    e = np.exp(out["logits"] - out["logits"].max())
    np.testing.assert_allclose(out["prob"], e / e.sum(), rtol=1e-5)
    # The model's output is unchanged by asking for intermediates.
    np.testing.assert_array_equal(out["prob"], ort_outputs(path, {"x": digit})["prob"])


def test_external_data_with_intermediates(tmp_path, digit):
    folder = tmp_path / "ext"
    folder.mkdir()
    path = make_cnn(folder / "cnn.onnx", external_data=True)
    assert (folder / "cnn.onnx.data").is_file()
    with OnnxRuntimeRunner(path) as runner:
        out = runner.infer({"x": digit}, ["r2", "prob"])
    plain = make_cnn(tmp_path / "plain.onnx")
    np.testing.assert_array_equal(out["prob"], ort_outputs(plain, {"x": digit})["prob"])


def test_unknown_tensor_and_bad_inputs(tmp_path, digit):
    path = make_cnn(tmp_path / "cnn.onnx")
    with OnnxRuntimeRunner(path) as runner:
        with pytest.raises(OutputMarkingError, match="'nope'"):
            runner.infer({"x": digit}, ["nope"])
        with pytest.raises(UsageError, match="the model takes x"):
            runner.infer({"data": digit})


def test_not_onnx(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelParseError, match=r"bad\.onnx"):
        OnnxRuntimeRunner(bad)


def test_owned_folder_removed_on_close(tmp_path):
    owned = tmp_path / "owned"
    owned.mkdir()
    path = make_cnn(owned / "cnn.onnx")
    OnnxRuntimeRunner(path, owned_dir=owned).close()
    assert not owned.exists()
