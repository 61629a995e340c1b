"""A numpy forward pass of a whole Caffe net, layer by layer, with the forks' semantics.

The reference for nets OpenCV 4.14 cannot run (SegNet/ENet/PSPNet's BN, SegNet's Upsample with
a pooling mask, PSPNet's HoleConvolution and Interp). Each layer is a transcription of the
fork's C++ forward at test time, most of them the per-layer references of the layer tests;
blobs are overwritten in place as in Caffe, so a blob holds its last write. Blobs are float32,
as in Caffe.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from test_layers_conv import conv_ref, deconv_ref
from test_layers_norm import lrn_across
from test_layers_pool import caffe_pool
from test_layers_shape import caffe_interp2
from test_layers_unpool import caffe_max_pool_with_mask, segnet_upsample
from test_layers_yolo import port_reorg

from trtimport.importers.caffe.layers.conv import has_hole
from trtimport.importers.caffe.parse import CaffeModel

Blobs = list[np.ndarray]
Layer = Any  # caffe_pb2.LayerParameter
Forward = Callable[[Layer, Blobs, Blobs], Blobs]

#: Data layers whose tops the caller feeds (a deploy net's data layer becomes an input).
DATA_TYPES = {"Input", "DenseImageData", "ImageData", "Data", "ImageSegData", "AnnotatedData"}


def _pair(values: Any, single: int, h: int, w: int, has_hw: bool) -> tuple[int, int]:
    if has_hw:
        return h, w
    return (int(values[0]), int(values[0])) if len(values) else (single, single)


def _conv(layer: Layer, x: np.ndarray, blobs: Blobs) -> np.ndarray:
    p = layer.convolution_param
    kernel = (p.kernel_h, p.kernel_w) if p.HasField("kernel_h") else (p.kernel_size[0],) * 2
    stride = _pair(p.stride, 1, p.stride_h, p.stride_w, p.HasField("stride_h"))
    pad = _pair(p.pad, 0, p.pad_h, p.pad_w, p.HasField("pad_h"))
    if layer.type == "HoleConvolution" or has_hole(p):  # PSPNet, DeepLab v1: k + (k-1)(hole-1)
        hw = p.HasField("hole_h")
        dilation = (p.hole_h, p.hole_w) if hw else (p.hole, p.hole)
    else:
        dilation = _pair(p.dilation, 1, 0, 0, False)
    w = blobs[0].reshape(blobs[0].shape[0], -1, *kernel)
    b = blobs[1].ravel() if p.bias_term else None
    ref = deconv_ref if layer.type == "Deconvolution" else conv_ref
    return np.asarray(ref(x, w, b, stride, pad, dilation, p.group))


def _pool(layer: Layer, x: np.ndarray) -> Blobs:
    p = layer.pooling_param
    method = {0: "MAX", 1: "AVE"}[p.pool]
    if p.global_pooling:
        return [caffe_pool(x, x.shape[2:], (1, 1), (0, 0), method)]
    k = (p.kernel_h, p.kernel_w) if p.HasField("kernel_h") else (p.kernel_size,) * 2
    s = (p.stride_h, p.stride_w) if p.HasField("stride_h") else (p.stride,) * 2
    pad = (p.pad_h, p.pad_w) if p.HasField("pad_h") else (p.pad,) * 2
    ceil = p.ceil_mode and p.round_mode == p.CEIL
    if len(layer.top) == 2:  # SegNet/ENet: the argmax mask for Upsample (tiling windows)
        assert k[0] == k[1] == s[0] == s[1] and pad == (0, 0) and ceil, layer.name
        return list(caffe_max_pool_with_mask(x, k[0]))
    return [caffe_pool(x, k, s, pad, method, ceil=ceil)]


def _upsample(layer: Layer, x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """SegNet's UpsampleLayer: upsample_h/w, else H * scale minus pad_out_h (one less row)."""
    p = layer.upsample_param
    if p.HasField("upsample_h"):
        h, w = p.upsample_h, p.upsample_w
    else:
        h = x.shape[2] * (p.scale_h or p.scale) - int(p.pad_out_h)
        w = x.shape[3] * (p.scale_w or p.scale) - int(p.pad_out_w)
    return np.asarray(segnet_upsample(x, mask, h, w))


def _interp(layer: Layer, x: np.ndarray) -> np.ndarray:
    """PSPNet/DeepLab InterpLayer sizes (no padding here), then caffe_cpu_interp2."""
    p = layer.interp_param
    h, w = x.shape[2:]
    if p.HasField("height") and p.HasField("width"):
        size = (p.height, p.width)
    else:  # shrink first, then zoom, either alone or both (DeepLab's multi-scale nets)
        size = ((h - 1) // p.shrink_factor + 1, (w - 1) // p.shrink_factor + 1)
        z = p.zoom_factor
        size = (size[0] + (size[0] - 1) * (z - 1), size[1] + (size[1] - 1) * (z - 1))
    assert p.pad_beg == 0 and p.pad_end == 0, layer.name
    return np.asarray(caffe_interp2(x, *size))


def _bn(layer: Layer, x: np.ndarray, blobs: Blobs) -> np.ndarray:
    """BN forks: SegNet/ENet bn_mode INFERENCE is x * scale + shift (statistics folded in);
    with stored mean and variance (PSPNet, yjxiong) scale * (x - mean) / sqrt(var + eps) + shift."""
    scale, shift = (b.reshape(1, -1, 1, 1) for b in blobs[:2])
    if layer.bn_param.bn_mode == layer.bn_param.INFERENCE:
        return np.asarray(x * scale + shift)
    mean, var = (b.reshape(1, -1, 1, 1) for b in blobs[2:4])
    return np.asarray(scale * (x - mean) / np.sqrt(var + layer.bn_param.eps) + shift)


def _eltwise(layer: Layer, xs: Blobs) -> np.ndarray:
    p = layer.eltwise_param
    if p.operation == p.PROD:
        return np.asarray(np.prod(xs, axis=0))
    if p.operation == p.MAX:
        return np.asarray(np.max(xs, axis=0))
    coeffs = list(p.coeff) or [1.0] * len(xs)
    return np.asarray(sum(c * x for c, x in zip(coeffs, xs, strict=True)))


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def _prelu(x: np.ndarray, slope: np.ndarray) -> np.ndarray:
    a = slope.reshape(1, -1, 1, 1) if slope.size > 1 else slope.ravel()[0]
    return np.asarray(np.where(x > 0, x, a * x))


def _relu(layer: Layer, x: np.ndarray) -> np.ndarray:
    return np.asarray(np.where(x > 0, x, layer.relu_param.negative_slope * x))


def _dropout(layer: Layer, x: np.ndarray) -> np.ndarray:
    p = layer.dropout_param
    return x if p.scale_train else x * (1.0 - p.dropout_ratio)


def _lrn(layer: Layer, x: np.ndarray) -> np.ndarray:
    p = layer.lrn_param
    assert p.norm_region == p.ACROSS_CHANNELS, layer.name
    return np.asarray(lrn_across(x, p.local_size, p.alpha, p.beta, p.k))


def _inner_product(layer: Layer, x: np.ndarray, blobs: Blobs) -> np.ndarray:
    """InnerProductLayer: the bottom flattened from ``axis``, times W (num_output x K)
    transposed (W as K x num_output with ``transpose``), plus the bias."""
    p = layer.inner_product_param
    axis = p.axis % x.ndim
    flat = x.reshape(*x.shape[:axis], -1)
    w = (
        blobs[0].reshape(p.num_output, -1)
        if not p.transpose
        else blobs[0].reshape(-1, p.num_output).T
    )
    y = flat @ w.T
    return np.asarray(y + blobs[1].ravel() if p.bias_term else y)


def _batch_norm(layer: Layer, x: np.ndarray, blobs: Blobs) -> np.ndarray:
    """BVLC BatchNormLayer with its stored statistics: mean and variance are the blobs divided
    by the third blob's scale factor (0 stays 0), then (x - mean) / sqrt(var + eps)."""
    factor = float(blobs[2].ravel()[0])
    factor = 0.0 if factor == 0 else 1.0 / factor
    mean, var = (b.reshape(1, -1, 1, 1) * factor for b in blobs[:2])
    return np.asarray((x - mean) / np.sqrt(var + layer.batch_norm_param.eps))


def _scale(layer: Layer, x: np.ndarray, blobs: Blobs) -> np.ndarray:
    """ScaleLayer with a learned per-channel scale (axis 1) and optional bias."""
    p = layer.scale_param
    assert p.axis == 1 and blobs[0].size == x.shape[1], layer.name
    y = x * blobs[0].reshape(1, -1, 1, 1)
    return np.asarray(y + blobs[1].reshape(1, -1, 1, 1) if p.bias_term else y)


def _reorg(layer: Layer, x: np.ndarray) -> np.ndarray:
    """Reorg: the ports' reorg_cpu (gather, or scatter with ``reverse``); without a stride,
    caffe-yolo9000's, which scatters with stride 2 and labels the buffer Cs² x H/s x W/s."""
    p = layer.reorg_param
    if not p.HasField("stride") and not p.reverse:
        n, c, h, w = x.shape
        return port_reorg(x, 2, reverse=True).reshape(n, c * 4, h // 2, w // 2)
    return port_reorg(x, p.stride, reverse=p.reverse)


def _reshape(layer: Layer, x: np.ndarray) -> np.ndarray:
    """ReshapeLayer over the whole blob: 0 copies the bottom's dimension, -1 is inferred."""
    p = layer.reshape_param
    assert p.axis == 0 and p.num_axes == -1, layer.name
    dims = [x.shape[i] if d == 0 else int(d) for i, d in enumerate(p.shape.dim)]
    return x.reshape(dims)


FORWARD: dict[str, Forward] = {
    "Convolution": lambda layer, xs, w: [_conv(layer, xs[0], w)],
    "HoleConvolution": lambda layer, xs, w: [_conv(layer, xs[0], w)],
    "Deconvolution": lambda layer, xs, w: [_conv(layer, xs[0], w)],
    "BN": lambda layer, xs, w: [_bn(layer, xs[0], w)],
    "ReLU": lambda layer, xs, w: [_relu(layer, xs[0])],
    "PReLU": lambda layer, xs, w: [_prelu(xs[0], w[0])],
    "Pooling": lambda layer, xs, w: _pool(layer, xs[0]),
    "Upsample": lambda layer, xs, w: [_upsample(layer, xs[0], xs[1])],
    "Interp": lambda layer, xs, w: [_interp(layer, xs[0])],
    "Concat": lambda layer, xs, w: [np.concatenate(xs, axis=layer.concat_param.axis)],
    "Eltwise": lambda layer, xs, w: [_eltwise(layer, xs)],
    "Dropout": lambda layer, xs, w: [_dropout(layer, xs[0])],
    "Softmax": lambda layer, xs, w: [_softmax(xs[0])],
    "LRN": lambda layer, xs, w: [_lrn(layer, xs[0])],
    "InnerProduct": lambda layer, xs, w: [_inner_product(layer, xs[0], w)],
    # MobileNet-YOLO (eric612): a grouped convolution; ReLU6 is min(max(x, 0), 6).
    "DepthwiseConvolution": lambda layer, xs, w: [_conv(layer, xs[0], w)],
    "ReLU6": lambda layer, xs, w: [np.clip(xs[0], 0, 6)],
    "BatchNorm": lambda layer, xs, w: [_batch_norm(layer, xs[0], w)],
    "Scale": lambda layer, xs, w: [_scale(layer, xs[0], w)],
    "Reorg": lambda layer, xs, w: [_reorg(layer, xs[0])],
    "Reshape": lambda layer, xs, w: [_reshape(layer, xs[0])],
}


def caffe_forward(
    model: CaffeModel, feeds: Mapping[str, np.ndarray], until: str | None = None
) -> dict[str, np.ndarray]:
    """Every blob after a forward pass of ``model`` (its weights) on ``feeds`` (data tops),
    stopping before the layer named ``until`` (a head the comparison cuts off)."""
    blobs = {name: np.asarray(x, np.float32) for name, x in feeds.items()}
    for layer in model.net.layer:
        if layer.name == until:
            break
        if layer.type in DATA_TYPES:
            assert set(layer.top) - {"label"} <= set(blobs), layer.name
            continue
        inputs = [blobs[b] for b in layer.bottom]
        weights = [np.asarray(b, np.float32) for b in model.weights.get(layer.name, [])]
        outputs = FORWARD[layer.type](layer, inputs, weights)
        blobs.update(zip(layer.top, (o.astype(np.float32) for o in outputs), strict=True))
    return blobs
