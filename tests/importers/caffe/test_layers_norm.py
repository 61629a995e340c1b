"""BatchNorm, BN, Scale, Bias, LRN, MVN and Normalize against Caffe's definitions."""

from __future__ import annotations

import numpy as np
import pytest
from caffe_harness import close, layer, net_text, rng, run

from trtimport.errors import UnsupportedLayerError

X = rng(30).standard_normal((2, 4, 5, 6))


def chan(v):  # type: ignore[no-untyped-def]
    return np.asarray(v).reshape(1, -1, 1, 1)


@pytest.mark.parametrize("factor", [0.5, 0.0])
def test_batch_norm_divides_statistics_by_the_scale_factor(tmp_path, factor) -> None:  # type: ignore[no-untyped-def]
    r = rng(31)
    mean, var = r.standard_normal(4), r.uniform(0.5, 2, 4)
    params = "batch_norm_param { eps: 0.001 }"
    out = run(
        tmp_path,
        net_text(layer("BatchNorm", params), {"x": X.shape}),
        {"x": X},
        {"L": [mean, var, [factor]]},
    )
    s = 0.0 if factor == 0 else 1 / factor
    close(out["y"], (X - chan(mean * s)) / np.sqrt(chan(var * s) + 1e-3))


@pytest.mark.parametrize("stats", [True, False])
def test_bn_fork(tmp_path, stats) -> None:  # type: ignore[no-untyped-def]
    r = rng(32)
    gamma, beta = r.standard_normal((1, 4, 1, 1)), r.standard_normal((1, 4, 1, 1))
    mean, var = r.standard_normal((1, 4, 1, 1)), r.uniform(0.5, 2, (1, 4, 1, 1))
    blobs = [gamma, beta, mean, var] if stats else [gamma, beta]
    mode = "" if stats else "bn_mode: INFERENCE"  # SegNet/ENet's folded form
    out = run(
        tmp_path,
        net_text(layer("BN", f"bn_param {{ eps: 0.0001 {mode} }}"), {"x": X.shape}),
        {"x": X},
        {"L": blobs},
    )
    expected = gamma * (X - mean) / np.sqrt(var + 1e-4) + beta if stats else gamma * X + beta
    close(out["y"], expected)


def test_bn_inference_mode_is_scale_and_shift_whatever_else_is_stored(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """SegNet's bn_mode INFERENCE is x * scale + shift; blobs beyond its two are not read."""
    r = rng(36)
    gamma, beta = r.standard_normal((1, 4, 1, 1)), r.standard_normal((1, 4, 1, 1))
    stats = [r.standard_normal((1, 4, 1, 1)), r.uniform(0.5, 2, (1, 4, 1, 1))]
    text = net_text(layer("BN", "bn_param { bn_mode: INFERENCE }"), {"x": X.shape})
    out = run(tmp_path, text, {"x": X}, {"L": [gamma, beta, *stats]})
    close(out["y"], gamma * X + beta)


def test_segnet_bn_in_learn_mode_is_refused_with_what_to_do(tmp_path) -> None:  # type: ignore[no-untyped-def]
    r = rng(34)
    blobs = [r.standard_normal((1, 4, 1, 1)), r.standard_normal((1, 4, 1, 1))]
    with pytest.raises(UnsupportedLayerError, match=r"compute_bn_statistics\.py"):
        run(tmp_path, net_text(layer("BN", ""), {"x": X.shape}), {"x": X}, {"L": blobs})


@pytest.mark.parametrize(
    ("params", "pshape", "bshape"),
    [
        ("", (4,), (1, 4, 1, 1)),
        ("scale_param { bias_term: true }", (4,), (1, 4, 1, 1)),
        ("scale_param { axis: 1 num_axes: 2 }", (4, 5), (1, 4, 5, 1)),
        ("scale_param { axis: -1 }", (6,), (1, 1, 1, 6)),
        ("scale_param { num_axes: 0 bias_term: true }", (), ()),
        ("scale_param { axis: 0 num_axes: -1 }", (2, 4, 5, 6), (2, 4, 5, 6)),
    ],
)
def test_scale_with_blobs(tmp_path, params, pshape, bshape) -> None:  # type: ignore[no-untyped-def]
    r = rng(33)
    s, b = r.standard_normal(pshape), r.standard_normal(pshape)
    bias = "bias_term: true" in params
    out = run(
        tmp_path,
        net_text(layer("Scale", params), {"x": X.shape}),
        {"x": X},
        {"L": [s, b] if bias else [s]},
    )
    close(out["y"], X * np.reshape(s, bshape) + (np.reshape(b, bshape) if bias else 0))


def test_scale_and_bias_with_a_second_bottom(tmp_path) -> None:  # type: ignore[no-untyped-def]
    r = rng(34)
    s = r.standard_normal((2, 4))
    text = net_text(
        layer("Scale", "scale_param { axis: 0 bias_term: true }", ("x", "s"), ("y",))
        + layer("Bias", "", ("y", "c"), ("z",), name="B"),
        {"x": X.shape, "s": s.shape, "c": (4, 5)},
    )
    c = r.standard_normal((4, 5))
    bias = r.standard_normal((2, 4))
    out = run(tmp_path, text, {"x": X, "s": s, "c": c}, {"L": [bias]})
    y = X * s[:, :, None, None] + bias[:, :, None, None]
    close(out["z"], y + c[None, :, :, None])


def test_bias_with_blob(tmp_path) -> None:  # type: ignore[no-untyped-def]
    b = rng(35).standard_normal(4)
    out = run(tmp_path, net_text(layer("Bias", ""), {"x": X.shape}), {"x": X}, {"L": [b]})
    close(out["y"], X + chan(b))


def lrn_across(x, size, alpha, beta, k):  # type: ignore[no-untyped-def]
    c = x.shape[1]
    half = (size - 1) // 2
    padded = np.pad(x**2, ((0, 0), (half, half), (0, 0), (0, 0)))
    sums = sum(padded[:, i : i + c] for i in range(size))
    return x / (k + alpha / size * sums) ** beta


def lrn_within(x, size, alpha, beta):  # type: ignore[no-untyped-def]
    """Caffe: AVE pooling of x^2 (pad (size-1)/2, divisor size^2), then (1 + alpha*avg)^-beta."""
    half = (size - 1) // 2
    _, _, h, w = x.shape
    padded = np.pad(x**2, ((0, 0), (0, 0), (half, half), (half, half)))
    sums = sum(padded[:, :, i : i + h, j : j + w] for i in range(size) for j in range(size))
    return x * (1 + alpha * sums / size**2) ** -beta


@pytest.mark.parametrize("k", [1.0, 2.0])
def test_lrn_across_channels_honours_k(tmp_path, k) -> None:  # type: ignore[no-untyped-def]
    params = f"lrn_param {{ local_size: 3 alpha: 0.5 beta: 0.75 k: {k} }}"
    out = run(tmp_path, net_text(layer("LRN", params), {"x": X.shape}), {"x": X})
    close(out["y"], lrn_across(X, 3, 0.5, 0.75, k))


def test_lrn_within_channel(tmp_path) -> None:  # type: ignore[no-untyped-def]
    params = "lrn_param { local_size: 3 alpha: 0.7 beta: 0.6 norm_region: WITHIN_CHANNEL k: 5 }"
    out = run(tmp_path, net_text(layer("LRN", params), {"x": X.shape}), {"x": X})
    close(out["y"], lrn_within(X, 3, 0.7, 0.6))


@pytest.mark.parametrize("variance", [True, False])
@pytest.mark.parametrize("across", [True, False])
def test_mvn(tmp_path, variance, across) -> None:  # type: ignore[no-untyped-def]
    params = (
        f"mvn_param {{ normalize_variance: {str(variance).lower()} "
        f"across_channels: {str(across).lower()} eps: 0.01 }}"
    )
    out = run(tmp_path, net_text(layer("MVN", params), {"x": X.shape}), {"x": X})
    axes = (1, 2, 3) if across else (2, 3)
    centered = X - X.mean(axis=axes, keepdims=True)
    if variance:  # Caffe adds eps to the standard deviation, not to the variance
        centered = centered / (np.sqrt((centered**2).mean(axis=axes, keepdims=True)) + 0.01)
    close(out["y"], centered)


@pytest.mark.parametrize("spatial", [True, False])
@pytest.mark.parametrize("shared", [True, False])
def test_normalize(tmp_path, spatial, shared) -> None:  # type: ignore[no-untyped-def]
    s = rng(36).uniform(1, 20, 1 if shared else 4)
    params = (
        f"norm_param {{ across_spatial: {str(spatial).lower()} "
        f"channel_shared: {str(shared).lower()} eps: 0.001 }}"
    )
    out = run(tmp_path, net_text(layer("Normalize", params), {"x": X.shape}), {"x": X}, {"L": [s]})
    axes = (1, 2, 3) if spatial else (1,)
    norm = np.sqrt((X**2).sum(axis=axes, keepdims=True) + 0.001)
    close(out["y"], X / norm * (s[0] if shared else chan(s)))
