"""InnerProduct (axis, transpose, no bias) and Embed against numpy references."""

from __future__ import annotations

import numpy as np
import pytest
from caffe_harness import close, layer, net_text, rng, run


@pytest.mark.parametrize(
    ("shape", "axis", "transpose", "bias"),
    [
        ((2, 3, 4, 5), 1, False, True),
        ((2, 3, 4, 5), 1, True, True),
        ((2, 3, 4, 5), 2, False, True),
        ((2, 3, 4, 5), -1, True, False),
        ((4, 7), 1, False, False),
        ((3, 5), 0, False, True),
    ],
)
def test_inner_product(tmp_path, shape, axis, transpose, bias) -> None:  # type: ignore[no-untyped-def]
    r = rng(10)
    x = r.standard_normal(shape)
    a = axis % len(shape)
    k, n = int(np.prod(shape[a:])), 6
    w = r.standard_normal((k, n) if transpose else (n, k))
    b = r.standard_normal(n)
    params = (
        f"inner_product_param {{ num_output: {n} axis: {axis} transpose: {str(transpose).lower()} "
        f"bias_term: {str(bias).lower()} }}"
    )
    out = run(
        tmp_path,
        net_text(layer("InnerProduct", params), {"x": shape}),
        {"x": x},
        {"L": [w, b] if bias else [w]},
    )
    weight = w if transpose else w.T  # Caffe: transpose stores K x N, else N x K
    expected = x.reshape(*shape[:a], k) @ weight + (b if bias else 0)
    close(out["y"], expected)


def test_inner_product_accepts_legacy_4d_blobs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    r = rng(11)
    x, w, b = r.standard_normal((2, 8)), r.standard_normal((1, 1, 3, 8)), r.standard_normal(3)
    params = "inner_product_param { num_output: 3 }"
    out = run(
        tmp_path,
        net_text(layer("InnerProduct", params), {"x": x.shape}),
        {"x": x},
        {"L": [w, b.reshape(1, 1, 1, 3)]},
    )
    close(out["y"], x @ w.reshape(3, 8).T + b)


@pytest.mark.parametrize("bias", [True, False])
def test_embed(tmp_path, bias) -> None:  # type: ignore[no-untyped-def]
    r = rng(12)
    idx = r.integers(0, 10, (3, 4)).astype(np.float32)
    w, b = r.standard_normal((10, 5)), r.standard_normal(5)
    params = f"embed_param {{ num_output: 5 input_dim: 10 bias_term: {str(bias).lower()} }}"
    out = run(
        tmp_path,
        net_text(layer("Embed", params), {"x": idx.shape}),
        {"x": idx},
        {"L": [w, b] if bias else [w]},
    )
    close(out["y"], w[idx.astype(int)] + (b if bias else 0))
