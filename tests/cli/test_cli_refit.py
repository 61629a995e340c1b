"""``trtimport refit``: mapping errors listed at once; a good mapping then needs a GPU."""

from __future__ import annotations

import numpy as np
import pytest
from runtime_models import cnn_weights, copy_refittable_engine

from trtimport.cli import main
from trtimport.core.backend import get_backend


def test_mismatches_listed(tmp_path, capsys):
    engine = copy_refittable_engine(tmp_path)
    weights = cnn_weights()
    weights["fc.w"] = weights["fc.w"][:10]
    weights["conv1.w"] = weights["conv1.w"][:2]
    np.savez(tmp_path / "bad.npz", **weights)
    assert main(["refit", str(engine), "--weights", str(tmp_path / "bad.npz")]) == 1
    err = capsys.readouterr().err
    assert "2 problem(s)" in err
    assert "weight 'fc.w': shape [10, 10], the engine has [1176, 10]" in err
    assert "weight 'conv1.w': shape [2, 1, 3, 3], the engine has [4, 1, 3, 3]" in err
    assert "Traceback" not in err


def test_good_mapping_then_no_gpu(tmp_path, capsys):
    if get_backend().gpu_support_problem() is None:
        pytest.skip("a usable GPU is present")
    engine = copy_refittable_engine(tmp_path)
    np.savez(tmp_path / "new.npz", **cnn_weights(seed=9))
    assert main(["refit", str(engine), "--weights", str(tmp_path / "new.npz")]) == 1
    err = capsys.readouterr().err
    assert "mapping checked: 5 weight(s)" in err
    assert "error: Refitting" in err and "needs a GPU" in err
