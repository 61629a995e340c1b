"""Pooling and SPP against a numpy transcription of Caffe's pooling loops: ceil-mode sizes with
the clip rule, the AVE divisor that counts padding but not the overhang, global pooling."""

from __future__ import annotations

import math

import numpy as np
import pytest
from caffe_harness import close, layer, net_text, rng, run

from trtimport.importers.caffe import shapes


def caffe_pool(x, kernel, stride, pad, method, ceil=True):  # type: ignore[no-untyped-def]
    """Caffe's PoolingLayer::Forward_cpu, window by window."""
    n, c, h, w = x.shape
    outs = []
    for size, k, s, p in zip((h, w), kernel, stride, pad, strict=True):
        span = (size + 2 * p - k) / s
        o = (math.ceil(span) if ceil else math.floor(span)) + 1
        if any(pad) and (o - 1) * s >= size + p:  # Caffe clips both axes if either is padded
            o -= 1
        outs.append(o)
    y = np.zeros((n, c, *outs))
    for ph in range(outs[0]):
        for pw in range(outs[1]):
            hs, ws = ph * stride[0] - pad[0], pw * stride[1] - pad[1]
            he, we = min(hs + kernel[0], h + pad[0]), min(ws + kernel[1], w + pad[1])
            pool_size = (he - hs) * (we - ws)
            hs, ws, he, we = max(hs, 0), max(ws, 0), min(he, h), min(we, w)
            window = x[:, :, hs:he, ws:we]
            if method == "MAX":
                y[:, :, ph, pw] = window.max(axis=(2, 3))
            elif method == "AVE":
                y[:, :, ph, pw] = window.sum(axis=(2, 3)) / pool_size
            else:  # STOCHASTIC at test time
                y[:, :, ph, pw] = (window**2).sum(axis=(2, 3)) / window.sum(axis=(2, 3))
    return y


CASES = [
    # (H, W, kernel, stride, pad)  — comments say which Caffe rule the case exercises
    ((7, 7), (3, 3), (2, 2), (0, 0)),  # exact fit
    ((8, 8), (3, 3), (2, 2), (0, 0)),  # ceil overhang: last window hangs past the edge
    ((7, 7), (3, 3), (2, 2), (1, 1)),  # pad, last window ends at H+pad: divisor counts pad
    ((6, 6), (3, 3), (2, 2), (1, 1)),  # pad + overhang beyond H+pad: divisor excludes overhang
    ((5, 5), (2, 2), (2, 2), (1, 1)),  # clip rule: a window starting in the pad is dropped
    ((13, 10), (3, 2), (2, 3), (1, 0)),  # rectangular, overhang on one axis
    ((112, 112), (3, 3), (2, 2), (0, 0)),  # GoogLeNet-style ceil overhang at scale
]


@pytest.mark.parametrize("method", ["MAX", "AVE"])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_pooling(tmp_path, method, case) -> None:  # type: ignore[no-untyped-def]
    (h, w), k, s, p = case
    x = rng(4).standard_normal((2, 3, h, w))
    params = (
        f"pooling_param {{ pool: {method} kernel_h: {k[0]} kernel_w: {k[1]} stride_h: {s[0]} "
        f"stride_w: {s[1]} pad_h: {p[0]} pad_w: {p[1]} }}"
    )
    out = run(tmp_path, net_text(layer("Pooling", params), {"x": x.shape}), {"x": x})
    close(out["y"], caffe_pool(x, k, s, p, method))


def test_floor_round_mode(tmp_path) -> None:  # type: ignore[no-untyped-def]
    x = rng(5).standard_normal((1, 2, 8, 8))
    params = "pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 round_mode: FLOOR }"
    out = run(tmp_path, net_text(layer("Pooling", params), {"x": x.shape}), {"x": x})
    close(out["y"], caffe_pool(x, (3, 3), (2, 2), (1, 1), "AVE", ceil=False))


def test_stochastic_pooling_at_test_time(tmp_path) -> None:  # type: ignore[no-untyped-def]
    x = rng(6).uniform(0.1, 1.0, (1, 2, 7, 7))
    params = "pooling_param { pool: STOCHASTIC kernel_size: 3 stride: 2 }"
    out = run(tmp_path, net_text(layer("Pooling", params), {"x": x.shape}), {"x": x})
    close(out["y"], caffe_pool(x, (3, 3), (2, 2), (0, 0), "STOCHASTIC"))


@pytest.mark.parametrize("method", ["MAX", "AVE"])
def test_global_pooling(tmp_path, method) -> None:  # type: ignore[no-untyped-def]
    x = rng(7).standard_normal((2, 4, 5, 7))
    params = f"pooling_param {{ pool: {method} global_pooling: true }}"
    out = run(tmp_path, net_text(layer("Pooling", params), {"x": x.shape}), {"x": x})
    expected = x.max(axis=(2, 3)) if method == "MAX" else x.mean(axis=(2, 3))
    close(out["y"], expected[:, :, None, None])


@pytest.mark.parametrize("height", [1, 3])
def test_spp(tmp_path, height) -> None:  # type: ignore[no-untyped-def]
    x = rng(8).standard_normal((2, 3, 13, 11))
    params = f"spp_param {{ pyramid_height: {height} pool: MAX }}"
    out = run(tmp_path, net_text(layer("SPP", params), {"x": x.shape}), {"x": x})
    pieces = []
    for level in range(height):
        bins = 2**level
        k = [math.ceil(s / bins) for s in x.shape[2:]]
        p = [(kk * bins - s + 1) // 2 for kk, s in zip(k, x.shape[2:], strict=True)]
        pieces.append(caffe_pool(x, k, k, p, "MAX"))
    if height == 1:
        close(out["y"], pieces[0])
    else:
        close(out["y"], np.concatenate([q.reshape(2, -1) for q in pieces], axis=1))


def test_pad_not_smaller_than_kernel_is_a_shape_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from trtimport.errors import ShapeError

    params = "pooling_param { pool: MAX kernel_size: 2 pad: 2 }"
    with pytest.raises(ShapeError, match=r"'L'.*pad 2 must be smaller than the kernel 2"):
        run(tmp_path, net_text(layer("Pooling", params), {"x": (1, 1, 5, 5)}), {})


def test_window_wholly_outside_the_input_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from trtimport.errors import ShapeError

    params = "pooling_param { pool: MAX kernel_size: 2 stride: 3 }"
    with pytest.raises(ShapeError, match="wholly outside the input"):
        run(tmp_path, net_text(layer("Pooling", params), {"x": (1, 1, 9, 9)}), {})


def test_output_sizes_follow_caffe() -> None:
    assert shapes.pool_output(112, 3, 2, 0) == 56  # ceil: 55.5 -> 56 (+1 over floor)
    assert shapes.pool_output(5, 2, 2, 1) == 3  # the window starting in the pad is dropped
    assert shapes.pool_output(8, 3, 2, 1, ceil=False) == 4
