"""Activations and Power/Exp/Log against Caffe's formulas."""

from __future__ import annotations

import numpy as np
import pytest
from caffe_harness import close, layer, net_text, rng, run

X = rng(20).standard_normal((2, 3, 4, 5)) * 2

CASES = [
    ("ReLU", "", np.maximum(X, 0)),
    ("ReLU", "relu_param { negative_slope: 0.1 }", np.where(X > 0, X, 0.1 * X)),
    ("ReLU6", "", np.clip(X, 0, 6)),
    ("ELU", "elu_param { alpha: 0.5 }", np.where(X > 0, X, 0.5 * (np.exp(X) - 1))),
    ("Sigmoid", "", 1 / (1 + np.exp(-X))),
    ("TanH", "", np.tanh(X)),
    ("AbsVal", "", np.abs(X)),
    ("BNLL", "", np.log1p(np.exp(X))),
    ("Threshold", "threshold_param { threshold: 0.3 }", (X > 0.3).astype(float)),
    ("Clip", "clip_param { min: -0.5 max: 1.5 }", np.clip(X, -0.5, 1.5)),
    ("Swish", "", X / (1 + np.exp(-X))),
    ("Swish", "swish_param { beta: 1.7 }", X / (1 + np.exp(-1.7 * X))),
    ("Power", "power_param { power: 2 scale: 0.5 shift: 1 }", (1 + 0.5 * X) ** 2),
    ("Power", "power_param { power: 1 scale: -3 shift: 0.25 }", 0.25 - 3 * X),
    ("Exp", "", np.exp(X)),
    ("Exp", "exp_param { base: 2 scale: 0.5 shift: -1 }", 2.0 ** (-1 + 0.5 * X)),
    ("Log", "log_param { shift: 10 }", np.log(10 + X)),
    ("Log", "log_param { base: 10 scale: 0.5 shift: 9 }", np.log10(9 + 0.5 * X)),
]


@pytest.mark.parametrize(("kind", "params", "expected"), CASES, ids=[c[0] + c[1] for c in CASES])
def test_elementwise(tmp_path, kind, params, expected) -> None:  # type: ignore[no-untyped-def]
    out = run(tmp_path, net_text(layer(kind, params), {"x": X.shape}), {"x": X})
    close(out["y"], expected)


@pytest.mark.parametrize("shared", [False, True])
def test_prelu(tmp_path, shared) -> None:  # type: ignore[no-untyped-def]
    slope = rng(21).uniform(0.05, 0.5, 1 if shared else 3)
    params = f"prelu_param {{ channel_shared: {str(shared).lower()} }}"
    out = run(tmp_path, net_text(layer("PReLU", params), {"x": X.shape}), {"x": X}, {"L": [slope]})
    s = slope.reshape(1, -1, 1, 1) if not shared else slope[0]
    close(out["y"], np.where(X > 0, X, s * X))


def test_in_place_relu_keeps_the_blob_name_for_the_final_value(tmp_path) -> None:  # type: ignore[no-untyped-def]
    text = net_text(
        layer("Power", "power_param { shift: -1 }", ("x",), ("a",), name="shift")
        + layer("ReLU", "", ("a",), ("a",), name="relu"),
        {"x": X.shape},
    )
    out = run(tmp_path, text, {"x": X}, outputs=["a/shift", "a"])
    close(out["a/shift"], X - 1)
    close(out["a"], np.maximum(X - 1, 0))
