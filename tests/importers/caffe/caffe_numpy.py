"""A numpy forward pass of a whole Caffe net, layer by layer, with the forks' semantics.

The reference for nets OpenCV 4.14 cannot run (SegNet/ENet/PSPNet's BN, SegNet's Upsample with
a pooling mask, PSPNet's HoleConvolution and Interp). Each layer is a transcription of the
fork's C++ forward at test time, most of them the per-layer references of the layer tests;
blobs are overwritten in place as in Caffe, so a blob holds its last write. Blobs are float32,
as in Caffe.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from test_caffe_zoo import rel_error
from test_layers_conv import conv_ref, deconv_ref
from test_layers_norm import lrn_across
from test_layers_pool import caffe_pool
from test_layers_shape import caffe_interp2
from test_layers_unpool import caffe_max_pool_with_mask, segnet_upsample
from test_layers_yolo import port_reorg
from test_layers_yolo_detection_output import padded, yolo_detection_output_ref

from trtimport.importers.caffe.convert import Conversion, caffe_to_onnx
from trtimport.importers.caffe.layers.conv import has_hole
from trtimport.importers.caffe.parse import CaffeModel

Blobs = list[np.ndarray]
Layer = Any  # caffe_pb2.LayerParameter
Forward = Callable[[Layer, Blobs, Blobs], Blobs]

#: Data layers whose tops the caller feeds (a deploy net's data layer becomes an input).
DATA_TYPES = {"Input", "DenseImageData", "ImageData", "Data", "ImageSegData", "AnnotatedData"}
DEPTHWISE_TYPES = {"ConvolutionDepthwise", "DepthwiseConvolution"}


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
    # The MobileNet/ShuffleNet forks' depthwise layers: one group per input channel.
    group = x.shape[1] if layer.type in DEPTHWISE_TYPES else p.group
    return np.asarray(ref(x, w, b, stride, pad, dilation, group))


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


def _batch_norm(layer: Layer, x: np.ndarray, blobs: Blobs) -> np.ndarray:
    """BVLC BatchNormLayer at test time: mean and variance divided by the factor (blob 2; 0
    gives 0), (x - mean) / sqrt(var + eps); NVCaffe's scale_bias then scales and shifts."""
    p = layer.batch_norm_param
    factor = float(blobs[2].ravel()[0])
    factor = 0.0 if factor == 0 else 1.0 / factor
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mean, var = (b.reshape(shape) * np.float32(factor) for b in blobs[:2])
    y = (x - mean) / np.sqrt(var + np.float32(p.eps))
    if p.scale_bias:
        y = y * blobs[3].reshape(shape) + blobs[4].reshape(shape)
    return np.asarray(y)


def _scale(layer: Layer, xs: Blobs, blobs: Blobs) -> np.ndarray:
    """ScaleLayer: x * s, s (bottom[1] or blob 0) covering the axes from ``axis`` on; + bias."""
    p = layer.scale_param
    x = xs[0]
    axis = p.axis % x.ndim
    if len(xs) > 1:
        factor, rest = xs[1], blobs
    else:
        factor, rest = blobs[0], blobs[1:]
    shape = (1,) * axis + factor.shape + (1,) * (x.ndim - axis - factor.ndim)
    y = x * factor.reshape(shape)
    if p.bias_term:
        y = y + rest[0].reshape(shape)
    return np.asarray(y)


def _inner_product(layer: Layer, x: np.ndarray, blobs: Blobs) -> np.ndarray:
    p = layer.inner_product_param
    axis = p.axis % x.ndim
    flat = x.reshape(int(np.prod(x.shape[:axis])), -1)
    w = blobs[0].reshape(-1, p.num_output).T if p.transpose else blobs[0].reshape(p.num_output, -1)
    y = flat @ w.T
    if p.bias_term:
        y = y + blobs[1].ravel()
    return np.asarray(y.reshape(*x.shape[:axis], p.num_output))


def _axpy(xs: Blobs) -> np.ndarray:
    """SENet's AxpyLayer: top = bottom[2], then += a * bottom[1], a = bottom[0] per (n, c)."""
    a, x, y = xs
    return np.asarray(y + a.reshape(*x.shape[:2], *(1,) * (x.ndim - 2)) * x)


def _shuffle_channel(layer: Layer, x: np.ndarray) -> np.ndarray:
    """ShuffleNet's ShuffleChannelLayer: channel i * (C/g) + j goes to j * g + i."""
    g = layer.shuffle_channel_param.group
    out = np.empty_like(x)
    k = x.shape[1] // g
    for i in range(g):
        for j in range(k):
            out[:, j * g + i] = x[:, i * k + j]
    return out


def _slice(layer: Layer, x: np.ndarray) -> Blobs:
    """SliceLayer: at ``slice_point``s along ``axis`` (legacy ``slice_dim``), else equal parts."""
    p = layer.slice_param
    axis = p.axis if p.HasField("axis") or not p.HasField("slice_dim") else p.slice_dim
    points = list(p.slice_point)
    if not points:
        step = x.shape[axis] // len(layer.top)
        points = [step * i for i in range(1, len(layer.top))]
    return list(np.split(x, points, axis=axis))


def _reshape(layer: Layer, x: np.ndarray) -> np.ndarray:
    """ReshapeLayer over the whole shape (axis 0, num_axes -1): 0 copies, -1 infers."""
    p = layer.reshape_param
    assert p.axis == 0 and p.num_axes == -1, layer.name
    dims = [x.shape[i] if d == 0 else int(d) for i, d in enumerate(p.shape.dim)]
    return x.reshape(dims)


def _reduction(layer: Layer, x: np.ndarray) -> np.ndarray:
    """ReductionLayer: over every axis from ``axis`` on; SUM, ASUM, SUMSQ or MEAN, times coeff."""
    p = layer.reduction_param
    axis = p.axis % x.ndim if x.ndim else 0
    flat = x.reshape(*x.shape[:axis], -1)
    value = {
        1: lambda: np.sum(flat, -1),
        2: lambda: np.sum(np.abs(flat), -1),
        3: lambda: np.sum(flat * flat, -1),
        4: lambda: np.mean(flat, -1),
    }[p.operation]()
    return np.asarray(value * np.float32(p.coeff))


def _relu6_plus_3(x: np.ndarray) -> np.ndarray:
    return np.asarray(np.minimum(np.maximum(x + np.float32(3), np.float32(0)), np.float32(6)))


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


def _reorg(layer: Layer, x: np.ndarray) -> np.ndarray:
    """Reorg: the ports' reorg_cpu (gather, or scatter with ``reverse``); without a stride,
    caffe-yolo9000's, which scatters with stride 2 and labels the buffer Cs² x H/s x W/s."""
    p = layer.reorg_param
    if not p.HasField("stride") and not p.reverse:
        n, c, h, w = x.shape
        return port_reorg(x, 2, reverse=True).reshape(n, c * 4, h // 2, w // 2)
    return port_reorg(x, p.stride, reverse=p.reverse)


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
    "ConvolutionDepthwise": lambda layer, xs, w: [_conv(layer, xs[0], w)],
    "DepthwiseConvolution": lambda layer, xs, w: [_conv(layer, xs[0], w)],
    "BatchNorm": lambda layer, xs, w: [_batch_norm(layer, xs[0], w)],
    "Scale": lambda layer, xs, w: [_scale(layer, xs, w)],
    "InnerProduct": lambda layer, xs, w: [_inner_product(layer, xs[0], w)],
    "Sigmoid": lambda layer, xs, w: [np.asarray(1 / (1 + np.exp(-xs[0])))],
    "Axpy": lambda layer, xs, w: [_axpy(xs)],
    "ShuffleChannel": lambda layer, xs, w: [_shuffle_channel(layer, xs[0])],
    "Reshape": lambda layer, xs, w: [_reshape(layer, xs[0])],
    "Slice": lambda layer, xs, w: _slice(layer, xs[0]),
    "Reduction": lambda layer, xs, w: [_reduction(layer, xs[0])],
    "ReLU6": lambda layer, xs, w: [np.asarray(np.clip(xs[0], 0, 6))],
    # aovoc/caffe's HSwishLayer and HSigmoidLayer (float32 throughout, as there).
    "HSwish": lambda layer, xs, w: [xs[0] * _relu6_plus_3(xs[0]) / np.float32(6)],
    "HSigmoid": lambda layer, xs, w: [_relu6_plus_3(xs[0]) / np.float32(6)],
    "Reorg": lambda layer, xs, w: [_reorg(layer, xs[0])],
    "YoloDetectionOutput": lambda layer, xs, w: [_yolo_detection_output(layer, xs)],
}


def _yolo_detection_output(layer: Layer, xs: Blobs) -> np.ndarray:
    """eric612's rows, padded to the converter's fixed count (every candidate box)."""
    p = layer.yolo_detection_output_param
    params = {
        "num_classes": p.num_classes,
        "num_box": p.num_box,
        "confidence_threshold": p.confidence_threshold,
        "nms_threshold": p.nms_threshold,
        "biases": list(p.biases),
    }
    count = sum(x.shape[0] * x.shape[2] * x.shape[3] * p.num_box for x in xs[:2])
    return padded(yolo_detection_output_ref(xs, params), count)


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


def run_converted(
    model: CaffeModel, dest: Path, outputs: Sequence[str], input_seed: int
) -> tuple[Conversion, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Convert ``model`` to ``dest`` and run it on ONNX Runtime with uniform(-1, 1) inputs, each
    drawn by a fresh generator seeded ``input_seed``: (conversion, feeds, outputs by name). The
    outputs are ``outputs``, or the conversion's own when none are named."""
    conversion = caffe_to_onnx(model, dest, outputs=list(outputs))
    feeds = {
        name: np.random.default_rng(input_seed).uniform(-1, 1, shape).astype(np.float32)
        for name, shape in conversion.inputs.items()
    }
    names = list(outputs) or list(conversion.outputs)
    session = ort.InferenceSession(str(conversion.path), providers=["CPUExecutionProvider"])
    return conversion, feeds, dict(zip(names, session.run(names, feeds), strict=True))


def assert_matches_caffe_forward(
    label: str,
    model: CaffeModel,
    feeds: Mapping[str, np.ndarray],
    ours: Mapping[str, np.ndarray],
    tolerance: float,
    until: str | None = None,
) -> None:
    """Every blob in ``ours`` within ``tolerance`` (max relative error) of :func:`caffe_forward`
    on the same feeds, and none of the reference's blobs all zeros."""
    theirs = caffe_forward(model, feeds, until=until)
    errors = {n: rel_error(ours[n], theirs[n]) for n in ours}
    shown = ", ".join(f"{n} {tuple(ours[n].shape)} {e:.2e}" for n, e in errors.items())
    print(f"{label}: {shown}")
    assert max(errors.values()) <= tolerance, errors
    assert all(np.abs(theirs[n]).max() > 0 for n in ours)
