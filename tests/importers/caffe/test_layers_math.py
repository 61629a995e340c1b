"""Eltwise, Axpy, Softmax, ArgMax and Reduction against Caffe's definitions."""

from __future__ import annotations

import numpy as np
import pytest
from caffe_harness import close, layer, net_text, rng, run

R = rng(50)
A, B, C = (R.standard_normal((2, 3, 4, 5)) for _ in range(3))
SHAPES = {"a": A.shape, "b": B.shape, "c": C.shape}
FEEDS = {"a": A, "b": B, "c": C}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ("", A + B + C),
        ("eltwise_param { operation: SUM coeff: 1 coeff: -1 coeff: 0.5 }", A - B + 0.5 * C),
        ("eltwise_param { operation: PROD }", A * B * C),
        ("eltwise_param { operation: MAX }", np.maximum(np.maximum(A, B), C)),
    ],
)
def test_eltwise(tmp_path, params, expected) -> None:  # type: ignore[no-untyped-def]
    out = run(tmp_path, net_text(layer("Eltwise", params, ("a", "b", "c")), SHAPES), FEEDS)
    close(out["y"], expected)


def test_axpy_follows_the_senet_definition(tmp_path) -> None:  # type: ignore[no-untyped-def]
    scale = R.standard_normal((2, 3, 1, 1))
    text = net_text(layer("Axpy", "", ("s", "a", "b")), {"s": scale.shape, **SHAPES})
    out = run(tmp_path, text, {"s": scale, **FEEDS})
    close(out["y"], scale * A + B)  # a * bottom[1] + bottom[2]


@pytest.mark.parametrize("axis", [1, 2, -1])
def test_softmax(tmp_path, axis) -> None:  # type: ignore[no-untyped-def]
    out = run(
        tmp_path,
        net_text(layer("Softmax", f"softmax_param {{ axis: {axis} }}", ("a",)), SHAPES),
        FEEDS,
    )
    e = np.exp(A - A.max(axis=axis, keepdims=True))
    close(out["y"], e / e.sum(axis=axis, keepdims=True))


def caffe_order(x, axis):  # type: ignore[no-untyped-def]
    """Caffe sorts (value, index) pairs descending: equal values put the higher index first."""
    flipped = np.flip(x, axis=axis)
    order = np.argsort(-flipped, axis=axis, kind="stable")
    return x.shape[axis] - 1 - order


def caffe_argmax(x, top_k, out_max_val, axis=None):  # type: ignore[no-untyped-def]
    """Caffe's ArgMaxLayer: per sample (flattened) or along ``axis``; values sorted descending."""
    if axis is None:
        flat = x.reshape(x.shape[0], -1)
        idx = caffe_order(flat, 1)[:, :top_k]
        if not out_max_val:
            return idx[:, None, :].astype(float)
        vals = np.take_along_axis(flat, idx, axis=1)
        return np.stack([idx.astype(float), vals], axis=1)
    idx = np.take(caffe_order(x, axis), range(top_k), axis=axis)
    return np.take_along_axis(x, idx, axis=axis) if out_max_val else idx.astype(float)


@pytest.mark.parametrize(
    ("params", "k", "max_val", "axis"),
    [
        ("", 1, False, None),
        ("top_k: 3 out_max_val: true", 3, True, None),
        ("top_k: 2 axis: 1", 2, False, 1),
        ("top_k: 2 axis: 3 out_max_val: true", 2, True, 3),
    ],
)
def test_argmax(tmp_path, params, k, max_val, axis) -> None:  # type: ignore[no-untyped-def]
    ties = np.round(A * 1.5)  # few distinct values: ties decide the order
    out = run(
        tmp_path,
        net_text(layer("ArgMax", f"argmax_param {{ {params} }}", ("a",)), SHAPES),
        {**FEEDS, "a": ties},
    )
    close(out["y"], caffe_argmax(ties, k, max_val, axis))
    out = run(
        tmp_path, net_text(layer("ArgMax", f"argmax_param {{ {params} }}", ("a",)), SHAPES), FEEDS
    )
    close(out["y"], caffe_argmax(A, k, max_val, axis))


@pytest.mark.parametrize(
    ("op", "axis", "coeff"),
    [("SUM", 0, 1.0), ("ASUM", 1, 2.0), ("SUMSQ", 2, 1.0), ("MEAN", -1, 0.5), ("SUM", 3, -1.0)],
)
def test_reduction(tmp_path, op, axis, coeff) -> None:  # type: ignore[no-untyped-def]
    params = f"reduction_param {{ operation: {op} axis: {axis} coeff: {coeff} }}"
    out = run(tmp_path, net_text(layer("Reduction", params, ("a",)), SHAPES), FEEDS)
    a = axis % 4
    flat = A.reshape(*A.shape[:a], -1)
    value = {
        "SUM": flat.sum(-1),
        "ASUM": np.abs(flat).sum(-1),
        "SUMSQ": (flat**2).sum(-1),
        "MEAN": flat.mean(-1),
    }[op]
    close(out["y"], coeff * value)


def test_eltwise_shape_mismatch_names_both(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from trtimport.errors import ShapeError

    text = net_text(layer("Eltwise", "", ("a", "b")), {"a": (1, 3, 4, 4), "b": (1, 3, 4, 5)})
    with pytest.raises(ShapeError, match=r"bottom 'b' has shape \[1, 3, 4, 5\]"):
        run(tmp_path, text, {})
