"""Element-wise activations and the Power/Exp/Log family, exactly as Caffe defines them."""

from __future__ import annotations

import math

import numpy as np

from trtimport.importers.caffe.registry import Converter, LayerContext, Shape


def _unary(op: str, **attrs: object) -> Converter:
    def convert(ctx: LayerContext) -> list[Shape]:
        ctx.op(op, ctx.inputs[0], out=ctx.outputs[0], **attrs)
        return [ctx.input_shapes[0]]

    convert.__doc__ = f"ONNX {op}."
    return convert


def relu(ctx: LayerContext) -> list[Shape]:
    """ReLU; a non-zero ``negative_slope`` makes it LeakyRelu."""
    slope = float(ctx.layer.relu_param.negative_slope)
    if slope:
        ctx.op("LeakyRelu", ctx.inputs[0], out=ctx.outputs[0], alpha=slope)
    else:
        ctx.op("Relu", ctx.inputs[0], out=ctx.outputs[0])
    return [ctx.input_shapes[0]]


def relu6(ctx: LayerContext) -> list[Shape]:
    """ReLU6: min(max(x, 0), 6)."""
    ctx.op(
        "Clip",
        ctx.inputs[0],
        ctx.const(np.float32(0), "min"),
        ctx.const(np.float32(6), "max"),
        out=ctx.outputs[0],
    )
    return [ctx.input_shapes[0]]


def _relu6_of_x_plus_3(ctx: LayerContext) -> str:
    """min(max(x + 3, 0), 6), as the h-swish/h-sigmoid forks compute it."""
    shifted = ctx.op("Add", ctx.inputs[0], ctx.const(np.float32(3), "three"))
    zero, six = ctx.const(np.float32(0), "min"), ctx.const(np.float32(6), "max")
    return ctx.op("Clip", shifted, zero, six)


def hswish(ctx: LayerContext) -> list[Shape]:
    """HSwish (MobileNetV3 forks, e.g. aovoc/caffe): x * min(max(x + 3, 0), 6) / 6."""
    product = ctx.op("Mul", ctx.inputs[0], _relu6_of_x_plus_3(ctx))
    ctx.op("Div", product, ctx.const(np.float32(6), "six"), out=ctx.outputs[0])
    return [ctx.input_shapes[0]]


def hsigmoid(ctx: LayerContext) -> list[Shape]:
    """HSigmoid (MobileNetV3 forks, e.g. aovoc/caffe): min(max(x + 3, 0), 6) / 6."""
    ctx.op("Div", _relu6_of_x_plus_3(ctx), ctx.const(np.float32(6), "six"), out=ctx.outputs[0])
    return [ctx.input_shapes[0]]


def clip(ctx: LayerContext) -> list[Shape]:
    """Clip: min(max(x, min), max)."""
    p = ctx.layer.clip_param
    lo, hi = ctx.const(np.float32(p.min), "min"), ctx.const(np.float32(p.max), "max")
    ctx.op("Clip", ctx.inputs[0], lo, hi, out=ctx.outputs[0])
    return [ctx.input_shapes[0]]


def prelu(ctx: LayerContext) -> list[Shape]:
    """PReLU: one slope per channel (axis 1), or one for all with ``channel_shared``."""
    shape = ctx.input_shapes[0]
    if ctx.layer.prelu_param.channel_shared:
        slope = ctx.blob(0, (1,)).reshape(())
    else:
        channels = shape[1] if len(shape) > 1 else 1
        slope = ctx.blob(0, (channels,)).reshape((channels, *([1] * (len(shape) - 2))))
    ctx.op("PRelu", ctx.inputs[0], ctx.const(slope, "slope"), out=ctx.outputs[0])
    return [shape]


def elu(ctx: LayerContext) -> list[Shape]:
    """ELU with ``alpha``."""
    ctx.op("Elu", ctx.inputs[0], out=ctx.outputs[0], alpha=float(ctx.layer.elu_param.alpha))
    return [ctx.input_shapes[0]]


def threshold(ctx: LayerContext) -> list[Shape]:
    """Threshold: 1 where x > threshold, else 0."""
    t = ctx.const(np.float32(ctx.layer.threshold_param.threshold), "threshold")
    ctx.op("Cast", ctx.op("Greater", ctx.inputs[0], t), out=ctx.outputs[0], to=1)
    return [ctx.input_shapes[0]]


def swish(ctx: LayerContext) -> list[Shape]:
    """Swish: x * sigmoid(beta * x)."""
    beta = float(ctx.layer.swish_param.beta)
    x = ctx.inputs[0]
    scaled = x if beta == 1.0 else ctx.op("Mul", x, ctx.const(np.float32(beta), "beta"))
    ctx.op("Mul", x, ctx.op("Sigmoid", scaled), out=ctx.outputs[0])
    return [ctx.input_shapes[0]]


def _affine(ctx: LayerContext, scale: float, shift: float) -> str:
    """shift + scale * x, leaving out the identity parts."""
    y = ctx.inputs[0]
    if scale != 1.0:
        y = ctx.op("Mul", y, ctx.const(np.float32(scale), "scale"))
    if shift != 0.0:
        y = ctx.op("Add", y, ctx.const(np.float32(shift), "shift"))
    return y


def power(ctx: LayerContext) -> list[Shape]:
    """Power: (shift + scale * x) ^ power."""
    p = ctx.layer.power_param
    y = _affine(ctx, float(p.scale), float(p.shift))
    if p.power == 1.0:
        ctx.op("Identity", y, out=ctx.outputs[0])
    else:
        ctx.op("Pow", y, ctx.const(np.float32(p.power), "power"), out=ctx.outputs[0])
    return [ctx.input_shapes[0]]


def _log_base(base: float, ctx: LayerContext) -> float:
    if base == -1.0:
        return 1.0
    if base <= 0.0:
        raise ctx.shape_error(f"base {base} must be positive (or -1 for e)")
    return math.log(base)


def exp(ctx: LayerContext) -> list[Shape]:
    """Exp: base ^ (shift + scale * x); base -1 means e."""
    p = ctx.layer.exp_param
    ln_base = _log_base(float(p.base), ctx)
    y = _affine(ctx, float(p.scale) * ln_base, float(p.shift) * ln_base)
    ctx.op("Exp", y, out=ctx.outputs[0])
    return [ctx.input_shapes[0]]


def log(ctx: LayerContext) -> list[Shape]:
    """Log: log_base(shift + scale * x); base -1 means e."""
    p = ctx.layer.log_param
    ln_base = _log_base(float(p.base), ctx)
    y = ctx.op("Log", _affine(ctx, float(p.scale), float(p.shift)))
    if ln_base == 1.0:
        ctx.op("Identity", y, out=ctx.outputs[0])
    else:
        ctx.op("Mul", y, ctx.const(np.float32(1.0 / ln_base), "inv_ln_base"), out=ctx.outputs[0])
    return [ctx.input_shapes[0]]


CONVERTERS: dict[str, Converter] = {
    "ReLU": relu,
    "ReLU6": relu6,
    "PReLU": prelu,
    "ELU": elu,
    "Sigmoid": _unary("Sigmoid"),
    "TanH": _unary("Tanh"),
    "AbsVal": _unary("Abs"),
    "BNLL": _unary("Softplus"),
    "Threshold": threshold,
    "Clip": clip,
    "Swish": swish,
    "HSwish": hswish,
    "HSigmoid": hsigmoid,
    "Power": power,
    "Exp": exp,
    "Log": log,
}
