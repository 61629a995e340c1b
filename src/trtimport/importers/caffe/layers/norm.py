"""Normalisation layers: BatchNorm, BN (fork), Scale, Bias, LRN, MVN, Normalize (SSD)."""

from __future__ import annotations

import numpy as np

from trtimport.importers.caffe import shapes
from trtimport.importers.caffe.layers.common import (
    axis_index,
    intel_engine,
    reduce,
    unsqueeze_trailing,
)
from trtimport.importers.caffe.proto import caffe_pb2
from trtimport.importers.caffe.registry import Converter, LayerContext, Shape


def _channels(ctx: LayerContext) -> int:
    shape = ctx.input_shapes[0]
    if len(shape) < 2:
        raise ctx.shape_error(f"needs a channel axis, got input shape {list(shape)}")
    return shape[1]


def batch_norm(ctx: LayerContext) -> list[Shape]:
    """BatchNorm at test time, as BVLC, NVCaffe and Intel Caffe compute it.

    Stored statistics (``use_global_stats``, the test-time default): mean and variance divided
    by the scale-factor blob (0 means 0). An explicit ``use_global_stats: false`` normalizes with
    the statistics of the batch being run (biased variance), in groups of ``stats_batch_size``
    images (Intel's MKL-DNN engine; the net's ``bn_stats_batch_size`` overrides it).
    Blobs 3 and 4 scale and shift the result: NVCaffe's ``scale_bias: true``, or Intel's
    MKL2017/MKL-DNN layout (``use_weight_bias``, with the shift when ``bias_term``). Intel's
    ``relu: true`` applies a ReLU after (MKL-DNN's fused post-op).
    """
    c = _channels(ctx)
    p = ctx.layer.batch_norm_param
    gamma, beta = _batch_norm_affine(ctx, c)
    eps = float(p.eps)
    out = ctx.outputs[0]
    normalized = ctx.graph.fresh(f"{out}/bn") if p.relu else out
    if p.use_global_stats or not p.HasField("use_global_stats"):
        mean = ctx.blob(0, (c,))
        var = ctx.blob(1, (c,))
        factor = float(ctx.blob(2, (1,)).reshape(()))
        scale = 0.0 if factor == 0.0 else 1.0 / factor
        inputs = [
            ctx.inputs[0],
            ctx.const(gamma, "gamma"),
            ctx.const(beta, "beta"),
            ctx.const(mean * scale, "mean"),
            ctx.const(var * scale, "var"),
        ]
        ctx.node("BatchNormalization", inputs, [normalized], epsilon=eps)
    else:
        _batch_statistics_norm(ctx, gamma, beta, eps, normalized)
    if p.relu:
        ctx.op("Relu", normalized, out=out)
    return [ctx.input_shapes[0]]


def _batch_norm_affine(ctx: LayerContext, c: int) -> tuple[np.ndarray, np.ndarray]:
    """Scale and shift after normalizing: blobs 3 and 4 when the fork's layout has them."""
    p = ctx.layer.batch_norm_param
    ones, zeros = np.ones(c, np.float32), np.zeros(c, np.float32)
    if p.scale_bias:
        return ctx.blob(3, (c,)), ctx.blob(4, (c,))
    # Intel's MKL2017/MKL-DNN BatchNorm holds them when use_weight_bias (its default); a BVLC
    # caffemodel (3 blobs, a Scale layer after) is what Intel Caffe merges into that layout.
    if ctx.model.has_weights:
        intel = p.use_weight_bias and len(ctx.blobs) > 3
    else:
        intel = p.HasField("use_weight_bias") and p.use_weight_bias
    if not intel:
        return ones, zeros
    engine = intel_engine(ctx, caffe_pb2.BatchNormParameter.Engine.Name(p.engine))
    if engine == "CAFFE":
        raise ctx.unsupported(
            "scale and shift blobs with engine CAFFE: the Intel Caffe versions read "
            "keep this engine's BatchNorm blobs as scale, shift, mean, variance, factor, its "
            "MKL-DNN engine as mean, variance, factor, scale, shift, and other versions may "
            "differ, so the blob order is unknown; name the engine that wrote the caffemodel "
            '(engine: "MKLDNN" for the MKL-DNN order) on this layer'
        )
    if ctx.model.has_weights and len(ctx.blobs) > (5 if p.bias_term else 4):
        raise ctx.unsupported(
            f"bias_term: false but the caffemodel has {len(ctx.blobs)} blobs (a shift in "
            "blob 4); Intel Caffe refuses this pairing too"
        )
    merged = _merged_scale(ctx)
    has_shift = p.bias_term if merged is None else merged.scale_param.bias_term
    return ctx.blob(3, (c,)), ctx.blob(4, (c,)) if has_shift else zeros


def _merged_scale(ctx: LayerContext) -> caffe_pb2.LayerParameter | None:
    """The Scale layer that Intel's net compiler folded into this BatchNorm, if the caffemodel
    shows it did: the BatchNorm top's first reader is a one-bottom Scale without blobs.

    Intel Caffe (MKL2017/MKL-DNN engines) moves such a Scale's blobs into the BatchNorm
    (blobs 3 and 4, ``bias_term`` from the Scale's) and drops the Scale, so the caffemodels it
    writes hold the BatchNorm with them and no Scale layer.
    """
    layers = list(ctx.model.net.layer)
    index = next(i for i, layer in enumerate(layers) if layer.name == ctx.name)
    top = ctx.layer.top[0]
    for later in layers[index + 1 :]:
        if top in later.bottom:
            merged = (
                later.type == "Scale"
                and len(later.bottom) == 1
                and not ctx.model.weights.get(later.name)
            )
            return later if merged else None
    return None


def _folded_into_batch_norm(ctx: LayerContext) -> bool:
    """This Scale is one that Intel's net compiler folded into the BatchNorm before it."""
    if not ctx.model.has_weights or ctx.blobs or len(ctx.inputs) > 1:
        return False
    layers = list(ctx.model.net.layer)
    index = next(i for i, layer in enumerate(layers) if layer.name == ctx.name)
    bottom = ctx.layer.bottom[0]
    for earlier in reversed(layers[:index]):
        if bottom in earlier.top:
            blobs = ctx.model.weights.get(earlier.name, [])
            intel = earlier.type == "BatchNorm" and not earlier.batch_norm_param.scale_bias
            return intel and len(blobs) > 3
        if bottom in earlier.bottom:
            return False
    return False


def _batch_statistics_norm(
    ctx: LayerContext, gamma: np.ndarray, beta: np.ndarray, eps: float, out: str
) -> None:
    """(x - mean) / sqrt(var + eps) * gamma + beta with each group of images' own statistics."""
    p = ctx.layer.batch_norm_param
    shape = ctx.input_shapes[0]
    rank = len(shape)
    net = ctx.model.net
    group = net.bn_stats_batch_size if net.HasField("bn_stats_batch_size") else p.stats_batch_size
    engine = intel_engine(ctx, caffe_pb2.BatchNormParameter.Engine.Name(p.engine))
    x = ctx.inputs[0]
    axes = [0, *range(2, rank)]
    grouped = bool(group) and engine != "CAFFE" and group != shape[0]
    if grouped:
        if shape[0] % group:
            raise ctx.shape_error(f"batch {shape[0]} is not a multiple of stats_batch_size {group}")
        x = ctx.op("Reshape", x, ctx.ints([-1, int(group), *shape[1:]], "groups"))
        axes = [1, *range(3, rank + 1)]
    mean = reduce(ctx, "ReduceMean", x, axes, keepdims=True)
    centred = ctx.op("Sub", x, mean)
    var = reduce(ctx, "ReduceMean", ctx.op("Mul", centred, centred), axes, keepdims=True)
    std = ctx.op("Sqrt", ctx.op("Add", var, ctx.const(np.float32(eps), "eps")))
    normalized = ctx.op("Div", centred, std)
    if grouped:
        normalized = ctx.op("Reshape", normalized, ctx.ints([-1, *shape[1:]], "batch"))
    per_channel = (1, shape[1], *([1] * (rank - 2)))
    scaled = ctx.op("Mul", normalized, ctx.const(gamma.reshape(per_channel), "gamma"))
    ctx.op("Add", scaled, ctx.const(beta.reshape(per_channel), "beta"), out=out)


def _per_channel(ctx: LayerContext, index: int, channels: int) -> np.ndarray:
    """Blob ``index`` holding one value per channel, in any layout (the BN forks use 1xCx1x1)."""
    value = ctx.blob(index) if ctx.model.has_weights else ctx.blob(index, (1, channels, 1, 1))
    if value.size != channels:
        raise ctx.shape_error(
            f"weight blob {index} has shape {list(value.shape)}, expected {channels} values"
        )
    return value.reshape(channels)


def bn(ctx: LayerContext) -> list[Shape]:
    """BN (yjxiong/PSPNet/SegNet/ENet forks): scale * (x - mean) / sqrt(var + eps) + shift.

    With 4 blobs (scale, shift, mean, variance) the stored statistics are used, as those forks
    do at test time. With only scale and shift, SegNet's ``bn_mode: INFERENCE`` (statistics
    folded in by its compute_bn_statistics.py, as ENet's deploy nets have) is x * scale + shift;
    in SegNet's default LEARN mode the layer normalizes with the statistics of the batch being
    run, which depends on the batch, so it is refused with what to do.
    """
    c = _channels(ctx)
    inference = ctx.layer.bn_param.bn_mode == ctx.layer.bn_param.INFERENCE
    # SegNet's BN has two blobs in INFERENCE mode; statistics beside them would be unused.
    stored = not inference and (len(ctx.blobs) >= 4 or not ctx.model.has_weights)
    if not stored and not inference:
        raise ctx.unsupported(
            "BN with scale and shift only, in bn_mode LEARN, normalizes with the batch's own "
            "statistics (SegNet); fold the statistics in with SegNet's compute_bn_statistics.py, "
            "which also sets bn_mode: INFERENCE"
        )
    gamma, beta = _per_channel(ctx, 0, c), _per_channel(ctx, 1, c)
    if stored:
        mean, var = _per_channel(ctx, 2, c), _per_channel(ctx, 3, c)
    else:
        mean, var = np.zeros(c, np.float32), np.ones(c, np.float32)
    eps = float(ctx.layer.bn_param.eps) if stored else 0.0
    inputs = [
        ctx.inputs[0],
        ctx.const(gamma, "gamma"),
        ctx.const(beta, "beta"),
        ctx.const(mean, "mean"),
        ctx.const(var, "var"),
    ]
    ctx.node("BatchNormalization", inputs, ctx.outputs[:1], epsilon=eps)
    return [ctx.input_shapes[0]]


def _param_axes(ctx: LayerContext, axis: int, num_axes: int) -> tuple[int, Shape]:
    shape = ctx.input_shapes[0]
    start = axis_index(ctx, axis, len(shape))
    end = len(shape) if num_axes == -1 else start + num_axes
    if num_axes < -1 or end > len(shape):
        raise ctx.shape_error(f"num_axes {num_axes} from axis {axis} exceeds {list(shape)}")
    return start, tuple(shape[start:end])


def _operand(ctx: LayerContext, axis: int, num_axes: int, hint: str) -> str:
    """The second operand of Scale/Bias: bottom[1] or blob 0, aligned at ``axis``."""
    rank = len(ctx.input_shapes[0])
    if len(ctx.inputs) > 1:
        other = ctx.input_shapes[1]
        start, _ = _param_axes(ctx, axis, len(other))
        expected = tuple(ctx.input_shapes[0][start : start + len(other)])
        if tuple(other) != expected:
            raise ctx.shape_error(
                f"bottom '{ctx.layer.bottom[1]}' has shape {list(other)}, expected {list(expected)}"
            )
        return unsqueeze_trailing(ctx, ctx.inputs[1], len(other), rank - start - len(other))
    start, pshape = _param_axes(ctx, axis, num_axes)
    value = ctx.blob(0, pshape)
    return ctx.const(value.reshape(shapes.broadcast_shape(pshape, rank, start)), hint)


def scale(ctx: LayerContext) -> list[Shape]:
    """Scale: x * scale (a blob, or bottom[1]) aligned at ``axis``, plus an optional bias blob.

    A Scale without blobs right after a BatchNorm that holds them was folded into it by Intel
    Caffe's net compiler (the caffemodel Intel Caffe writes): it passes its input through.
    """
    p = ctx.layer.scale_param
    if _folded_into_batch_norm(ctx):
        ctx.op("Identity", ctx.inputs[0], out=ctx.outputs[0])
        return [ctx.input_shapes[0]]
    factor = _operand(ctx, p.axis, p.num_axes, "scale")
    if not p.bias_term:
        ctx.op("Mul", ctx.inputs[0], factor, out=ctx.outputs[0])
        return [ctx.input_shapes[0]]
    rank = len(ctx.input_shapes[0])
    num_axes = len(ctx.input_shapes[1]) if len(ctx.inputs) > 1 else p.num_axes
    start, pshape = _param_axes(ctx, p.axis, num_axes)
    index = 0 if len(ctx.inputs) > 1 else 1
    bias = ctx.blob(index, pshape).reshape(shapes.broadcast_shape(pshape, rank, start))
    product = ctx.op("Mul", ctx.inputs[0], factor)
    ctx.op("Add", product, ctx.const(bias, "bias"), out=ctx.outputs[0])
    return [ctx.input_shapes[0]]


def bias(ctx: LayerContext) -> list[Shape]:
    """Bias: x + bias (a blob, or bottom[1]) aligned at ``axis``."""
    p = ctx.layer.bias_param
    operand = _operand(ctx, p.axis, p.num_axes, "bias")
    ctx.op("Add", ctx.inputs[0], operand, out=ctx.outputs[0])
    return [ctx.input_shapes[0]]


def lrn(ctx: LayerContext) -> list[Shape]:
    """LRN. ACROSS_CHANNELS: x / (k + alpha/n * sum of squares over n channels)^beta.

    WITHIN_CHANNEL: x / (1 + alpha * mean of squares over an n x n window, zero padded)^beta;
    like Caffe, this mode ignores ``k``.
    """
    p = ctx.layer.lrn_param
    size = int(p.local_size)
    if size % 2 == 0:
        raise ctx.shape_error(f"local_size {size} must be odd (as Caffe requires)")
    x = ctx.inputs[0]
    if p.norm_region == p.ACROSS_CHANNELS:
        ctx.op(
            "LRN",
            x,
            out=ctx.outputs[0],
            size=size,
            alpha=float(p.alpha),
            beta=float(p.beta),
            bias=float(p.k),
        )
        return [ctx.input_shapes[0]]
    pad = (size - 1) // 2
    window = ctx.op(
        "AveragePool",
        ctx.op("Mul", x, x),
        kernel_shape=[size, size],
        strides=[1, 1],
        pads=[pad] * 4,
        count_include_pad=1,
    )
    base = ctx.op(
        "Add",
        ctx.op("Mul", window, ctx.const(np.float32(p.alpha), "alpha")),
        ctx.const(np.float32(1.0), "one"),
    )
    denom = ctx.op("Pow", base, ctx.const(np.float32(p.beta), "beta"))
    ctx.op("Div", x, denom, out=ctx.outputs[0])
    return [ctx.input_shapes[0]]


def mvn(ctx: LayerContext) -> list[Shape]:
    """MVN: subtract the mean over (C,)H,W; divide by (std + eps) if ``normalize_variance``."""
    p = ctx.layer.mvn_param
    shape = ctx.input_shapes[0]
    axes = list(range(1 if p.across_channels else 2, len(shape)))
    x = ctx.inputs[0]
    centered_out = None if p.normalize_variance else ctx.outputs[0]
    centered = ctx.op("Sub", x, reduce(ctx, "ReduceMean", x, axes, keepdims=True), out=centered_out)
    if p.normalize_variance:
        var = reduce(ctx, "ReduceMean", ctx.op("Mul", centered, centered), axes, keepdims=True)
        std = ctx.op("Add", ctx.op("Sqrt", var), ctx.const(np.float32(p.eps), "eps"))
        ctx.op("Div", centered, std, out=ctx.outputs[0])
    return [shape]


def normalize(ctx: LayerContext) -> list[Shape]:
    """Normalize (SSD): x / sqrt(sum of squares + eps) * scale; sum over C,H,W or over C."""
    p = ctx.layer.norm_param
    shape = ctx.input_shapes[0]
    c = _channels(ctx)
    axes = list(range(1, len(shape))) if p.across_spatial else [1]
    x = ctx.inputs[0]
    sums = reduce(ctx, "ReduceSumSquare", x, axes, keepdims=True)
    norm = ctx.op("Sqrt", ctx.op("Add", sums, ctx.const(np.float32(p.eps), "eps")))
    normalized = ctx.op("Div", x, norm)
    if p.channel_shared:
        factor = ctx.blob(0, (1,)).reshape(())
    else:
        factor = ctx.blob(0, (c,)).reshape((c, *([1] * (len(shape) - 2))))
    ctx.op("Mul", normalized, ctx.const(factor, "scale"), out=ctx.outputs[0])
    return [shape]


CONVERTERS: dict[str, Converter] = {
    "BatchNorm": batch_norm,
    "BN": bn,
    "Scale": scale,
    "Bias": bias,
    "LRN": lrn,
    "MVN": mvn,
    "Normalize": normalize,
}
