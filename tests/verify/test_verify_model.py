"""verify_model: ONNX Runtime on the model against a candidate ONNX of the same graph."""

from __future__ import annotations

import numpy as np
import pytest
from runtime_models import CNN_TENSORS, cnn_weights, make_cnn, ort_outputs

from trtimport.errors import UsageError
from trtimport.verify.verify import verify_model


def corrupted(path, tensor="conv2.w"):
    weights = cnn_weights()
    weights[tensor] = weights[tensor].copy()
    weights[tensor].flat[5] += 3.0
    return make_cnn(path, weights)


def test_layerwise_names_the_corrupted_layer(tmp_path):
    model = make_cnn(tmp_path / "cnn.onnx")
    candidate = corrupted(tmp_path / "edited.onnx")
    report = verify_model(model, candidate=candidate, layerwise=True, seed=1)
    assert not report.passed
    (result,) = report.candidates
    assert not result.outputs[0].passed and result.outputs[0].name == "prob"
    div = result.divergence
    assert (div.tensor, div.layer, div.op) == ("c2", "conv2", "Conv")
    assert div.index == CNN_TENSORS.index("c2") + 1 and div.compared == len(CNN_TENSORS)
    assert report.inputs == {"x": "random (seed 1)"}


def test_same_graph_passes_with_onnxruntime_numbers(tmp_path):
    model = make_cnn(tmp_path / "cnn.onnx")
    copy = make_cnn(tmp_path / "copy.onnx")
    digit = np.random.default_rng(0).random((1, 1, 28, 28)).astype(np.float32)
    np.save(tmp_path / "x.npy", digit)
    report = verify_model(
        model, candidate=copy, files={"x": tmp_path / "x.npy"}, layerwise=True, atol=0, rtol=0
    )
    assert report.passed
    (result,) = report.candidates
    assert result.divergence is None and result.compared_tensors == len(CNN_TENSORS)
    assert result.outputs[0].max_abs == 0.0 and result.outputs[0].cosine == pytest.approx(1.0)
    assert report.inputs["x"] == str(tmp_path / "x.npy")
    assert ort_outputs(model, {"x": digit})["prob"].shape == (1, 10)


def test_nothing_to_compare_for_onnx_on_cpu(tmp_path):
    pytest.importorskip("tensorrt_rtx")
    from trtimport.core.backend import get_backend

    if get_backend().gpu_support_problem() is None:
        pytest.skip("a usable GPU is present: the engine is the candidate")
    try:
        import trtimport.export.writer  # noqa: F401
    except ImportError:
        model = make_cnn(tmp_path / "cnn.onnx")
        with pytest.raises(UsageError, match=r"--candidate FILE\.onnx"):
            verify_model(model)
    else:
        model = make_cnn(tmp_path / "cnn.onnx")
        report = verify_model(model)
        assert report.candidates[0].label.startswith("cnn.onnx: TensorRT network")
        assert report.passed


def test_layerwise_marks_float_activations_on_the_network(tmp_path):
    from runtime_models import CNN_TENSORS

    from trtimport.populate import import_model
    from trtimport.verify.verify import mark_layerwise_outputs

    model = make_cnn(tmp_path / "cnn.onnx")
    with import_model(model) as imported:
        marked = mark_layerwise_outputs(imported, ["x", *CNN_TENSORS, "flat.shape", "nope"])
        names = [o.name for o in imported.outputs]
    assert names[0] == "prob" and set(marked) <= set(CNN_TENSORS) - {"prob"}
    assert {"c1", "r1", "c2", "logits"} <= set(marked) and names[1:] == marked
