"""Convolution, ConvolutionDepthwise and Deconvolution against numpy references of Caffe's
definitions (groups, dilation, pads, strides, rectangular kernels)."""

from __future__ import annotations

import numpy as np
import pytest
from caffe_harness import close, layer, net_text, rng, run


def conv_ref(x, w, b, stride, pad, dil, group):  # type: ignore[no-untyped-def]
    """Caffe's convolution: each output channel of a group sums its group's input channels."""
    n, _, h, wd = x.shape
    m, cg, kh, kw = w.shape
    oh = (h + 2 * pad[0] - (dil[0] * (kh - 1) + 1)) // stride[0] + 1
    ow = (wd + 2 * pad[1] - (dil[1] * (kw - 1) + 1)) // stride[1] + 1
    xp = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    out = np.zeros((n, m, oh, ow), np.result_type(x, w))
    mg = m // group
    for g in range(group):
        for i in range(kh):
            for j in range(kw):
                hs, ws = i * dil[0], j * dil[1]
                patch = xp[
                    :,
                    g * cg : (g + 1) * cg,
                    hs : hs + stride[0] * (oh - 1) + 1 : stride[0],
                    ws : ws + stride[1] * (ow - 1) + 1 : stride[1],
                ]
                out[:, g * mg : (g + 1) * mg] += np.einsum(
                    "nchw,mc->nmhw", patch, w[g * mg : (g + 1) * mg, :, i, j], optimize=True
                )
    return out + (0 if b is None else b.reshape(1, -1, 1, 1))


def deconv_ref(x, w, b, stride, pad, dil, group):  # type: ignore[no-untyped-def]
    """Caffe's deconvolution (col2im of the transposed product), weights C x M/group x kh x kw."""
    n, c, h, wd = x.shape
    _, mg, kh, kw = w.shape
    full_h = stride[0] * (h - 1) + dil[0] * (kh - 1) + 1
    full_w = stride[1] * (wd - 1) + dil[1] * (kw - 1) + 1
    out = np.zeros((n, mg * group, full_h, full_w), np.result_type(x, w))
    cg = c // group
    for g in range(group):
        for i in range(kh):
            for j in range(kw):
                hs, ws = i * dil[0], j * dil[1]
                out[
                    :,
                    g * mg : (g + 1) * mg,
                    hs : hs + stride[0] * (h - 1) + 1 : stride[0],
                    ws : ws + stride[1] * (wd - 1) + 1 : stride[1],
                ] += np.einsum(
                    "nchw,cm->nmhw",
                    x[:, g * cg : (g + 1) * cg],
                    w[g * cg : (g + 1) * cg, :, i, j],
                    optimize=True,
                )
    out = out[:, :, pad[0] : full_h - pad[0], pad[1] : full_w - pad[1]]
    return out + (0 if b is None else b.reshape(1, -1, 1, 1))


CONV_CASES = [
    # (input shape, num_output, params text, kernel, stride, pad, dilation, group)
    ((2, 3, 9, 9), 4, "kernel_size: 3", (3, 3), (1, 1), (0, 0), (1, 1), 1),
    (
        (1, 4, 10, 11),
        6,
        "kernel_size: 3 stride: 2 pad: 1 group: 2",
        (3, 3),
        (2, 2),
        (1, 1),
        (1, 1),
        2,
    ),
    ((1, 2, 12, 12), 4, "kernel_size: 3 dilation: 2 pad: 2", (3, 3), (1, 1), (2, 2), (2, 2), 1),
    (
        (1, 3, 9, 13),
        2,
        "kernel_h: 2 kernel_w: 5 stride_h: 3 stride_w: 1 pad_h: 1 pad_w: 2",
        (2, 5),
        (3, 1),
        (1, 2),
        (1, 1),
        1,
    ),
    (
        (1, 6, 8, 8),
        6,
        "kernel_size: 3 pad: 1 group: 6 bias_term: false",
        (3, 3),
        (1, 1),
        (1, 1),
        (1, 1),
        6,
    ),
    (
        (1, 2, 7, 9),
        3,
        "kernel_size: 2 kernel_size: 3 stride: 2 stride: 1 dilation: 1 dilation: 2",
        (2, 3),
        (2, 1),
        (0, 0),
        (1, 2),
        1,
    ),
]


def check(tmp_path, kind: str, case, seed: int) -> None:  # type: ignore[no-untyped-def]
    """Convert one (De)Convolution layer and compare it with the numpy reference."""
    shape, num, params, kernel, stride, pad, dil, group = case
    r = rng(seed)
    x = r.standard_normal(shape)
    deconv = kind == "Deconvolution"
    w_shape = (shape[1], num // group) if deconv else (num, shape[1] // group)
    w = r.standard_normal((*w_shape, *kernel))
    bias = "bias_term: false" not in params
    b = r.standard_normal(num) if bias else None
    text = net_text(
        layer(kind, f"convolution_param {{ num_output: {num} {params} }}"), {"x": shape}
    )
    out = run(tmp_path, text, {"x": x}, {"L": [w] + ([b] if bias else [])})
    reference = deconv_ref if deconv else conv_ref
    close(out["y"], reference(x, w, b, stride, pad, dil, group))


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: c[2])
def test_convolution(tmp_path, case) -> None:  # type: ignore[no-untyped-def]
    check(tmp_path, "Convolution", case, 1)


def test_convolution_depthwise(tmp_path) -> None:  # type: ignore[no-untyped-def]
    r = rng(2)
    x = r.standard_normal((1, 5, 7, 7))
    w, b = r.standard_normal((5, 1, 3, 3)), r.standard_normal(5)
    params = "convolution_param { num_output: 5 kernel_size: 3 stride: 2 pad: 1 }"
    out = run(
        tmp_path,
        net_text(layer("ConvolutionDepthwise", params), {"x": x.shape}),
        {"x": x},
        {"L": [w, b]},
    )
    close(out["y"], conv_ref(x, w, b, (2, 2), (1, 1), (1, 1), 5))


DECONV_CASES = [
    ((1, 3, 5, 5), 4, "kernel_size: 4 stride: 2 pad: 1", (4, 4), (2, 2), (1, 1), (1, 1), 1),
    ((2, 4, 4, 6), 6, "kernel_size: 3 stride: 2 group: 2", (3, 3), (2, 2), (0, 0), (1, 1), 2),
    (
        (1, 2, 5, 4),
        2,
        "kernel_size: 3 dilation: 2 pad: 1 bias_term: false",
        (3, 3),
        (1, 1),
        (1, 1),
        (2, 2),
        1,
    ),
    (
        (1, 8, 4, 4),
        8,
        "kernel_size: 4 stride: 2 pad: 1 group: 8",
        (4, 4),
        (2, 2),
        (1, 1),
        (1, 1),
        8,
    ),
]


@pytest.mark.parametrize("case", DECONV_CASES, ids=lambda c: c[2])
def test_deconvolution(tmp_path, case) -> None:  # type: ignore[no-untyped-def]
    check(tmp_path, "Deconvolution", case, 3)


def test_wrong_weight_shape_names_layer_and_shapes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from trtimport.errors import ShapeError

    text = net_text(
        layer("Convolution", "convolution_param { num_output: 4 kernel_size: 3 }"),
        {"x": (1, 3, 8, 8)},
    )
    with pytest.raises(ShapeError, match=r"'L'.*\[4, 3, 2, 2\].*\[4, 3, 3, 3\]"):
        run(tmp_path, text, {}, {"L": [np.zeros((4, 3, 2, 2)), np.zeros(4)]})
