"""The pass rule |candidate - reference| <= atol + rtol * |reference| and the error metrics."""

from __future__ import annotations

import numpy as np
import pytest

from trtimport.verify.compare import compare_arrays, cosine_similarity


def test_tolerance_boundary():
    ref = np.array([1.0, -2.0, 0.0], np.float32)
    # allowed error per element: 0.1 + 0.01 * |ref| = 0.11, 0.12, 0.1
    inside = ref + np.array([0.109, -0.119, 0.099], np.float32)
    outside = ref + np.array([0.0, 0.0, 0.101], np.float32)
    assert compare_arrays("t", ref, inside, atol=0.1, rtol=0.01).passed
    result = compare_arrays("t", ref, outside, atol=0.1, rtol=0.01)
    assert not result.passed and result.mismatched == 1
    assert result.max_abs == pytest.approx(0.101, rel=1e-5)
    assert result.max_rel == 0.0  # the only error is where the reference is 0


def test_metrics():
    ref = np.array([[1.0, 2.0], [4.0, 8.0]])
    cand = ref * 1.5
    r = compare_arrays("t", ref, cand, atol=0, rtol=0.5)
    assert r.passed and r.max_rel == pytest.approx(0.5) and r.max_abs == pytest.approx(4.0)
    assert r.cosine == pytest.approx(1.0)
    assert cosine_similarity(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(0.0)
    assert cosine_similarity(np.zeros(3), np.zeros(3)) == 1.0


def test_shape_and_nan():
    r = compare_arrays("t", np.zeros((1, 10)), np.zeros((10,)), atol=1, rtol=1)
    assert not r.passed and "shape differs" in r.note
    nan = np.array([np.nan, 1.0])
    assert compare_arrays("t", nan, nan.copy(), atol=0, rtol=0).passed
    bad = compare_arrays("t", np.array([0.0, 1.0]), nan, atol=1, rtol=1)
    assert not bad.passed and "NaN" in bad.note
