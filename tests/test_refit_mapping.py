"""Refit: the weight mapping is computed and checked on the CPU before the engine is touched.

A REFIT build fails without a GPU, so the engine here is a plain build whose sidecar is marked
refittable: everything up to deserializing the engine (which needs a GPU) runs for real.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from runtime_models import cnn_weights, copy_engine, copy_refittable_engine, make_cnn

from trtimport.core.backend import get_backend
from trtimport.errors import NoGpuError, ShapeError, UsageError
from trtimport.refit import plan_refit, refit_engine


def test_all_problems_listed_at_once(tmp_path):
    engine = copy_refittable_engine(tmp_path)
    weights = cnn_weights(seed=2)
    weights["conv2.w"] = weights["conv2.w"][:, :3]  # wrong shape
    weights["conv1.b"] = weights["conv1.b"].astype(np.float16)  # wrong dtype
    weights["conv9.w"] = np.zeros((2, 2), np.float32)  # unknown name
    np.savez(tmp_path / "new.npz", **weights)
    with pytest.raises(ShapeError) as info:
        plan_refit(engine, tmp_path / "new.npz")
    message = str(info.value)
    assert "3 problem(s)" in message and "nothing was changed" in message
    assert "weight 'conv2.w': shape [6, 3, 3, 3], the engine has [6, 4, 3, 3]" in message
    assert "weight 'conv1.b': dtype float16, the engine has float32" in message
    assert "'conv9.w' [2, 2] is not a weight of the engine" in message


def test_onnx_weights_missing_and_changed_graph(tmp_path):
    engine = copy_refittable_engine(tmp_path)
    other = make_cnn(tmp_path / "other.onnx", cnn_weights(seed=5))
    model = onnx.load(str(other))
    kept = [t for t in model.graph.initializer if t.name != "fc.w"]
    for t in kept:
        if t.name == "flat.shape":
            t.CopyFrom(onnx.numpy_helper.from_array(np.array([1, -1], np.int64), "flat.shape"))
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    onnx.save(model, str(tmp_path / "broken.onnx"))
    with pytest.raises(ShapeError) as info:
        plan_refit(engine, tmp_path / "broken.onnx")
    message = str(info.value)
    assert "missing weight 'fc.w' [1176, 10] float32" in message
    assert "constant 'flat.shape' differs" in message


def test_good_weights_then_no_gpu(tmp_path):
    engine = copy_refittable_engine(tmp_path)
    before = engine.read_bytes()
    np.savez(tmp_path / "new.npz", **{"conv2.w": cnn_weights(seed=7)["conv2.w"]})
    make_cnn(tmp_path / "new.onnx", cnn_weights(seed=7))
    for new in ("new.npz", "new.onnx"):
        with plan_refit(engine, tmp_path / new) as plan:
            assert plan.mode == new.split(".")[1]
            assert set(plan.expected) == {"conv1.w", "conv1.b", "conv2.w", "conv2.b", "fc.w"}
            if get_backend().gpu_support_problem() is None:
                continue
            with pytest.raises(NoGpuError, match="Refitting"):
                refit_engine(plan)
    assert engine.read_bytes() == before


def test_not_refittable_and_moved_source(tmp_path):
    engine = copy_engine(tmp_path)
    np.savez(tmp_path / "new.npz", **cnn_weights())
    with pytest.raises(UsageError, match="rebuild it with --refittable"):
        plan_refit(engine, tmp_path / "new.npz")
    engine = copy_refittable_engine(tmp_path)
    (tmp_path / "cnn.onnx").rename(tmp_path / "moved.onnx")
    with pytest.raises(UsageError, match="--model"):
        plan_refit(engine, tmp_path / "new.npz")
    with plan_refit(engine, tmp_path / "new.npz", model=tmp_path / "moved.onnx") as plan:
        assert len(plan.provided) == 5
