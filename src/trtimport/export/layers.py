"""One converter per TensorRT layer type: layer attributes and weights -> ONNX nodes.

Each converter gets the :class:`~trtimport.export.writer.GraphWriter` and the layer (already cast
to its subclass) and emits nodes: the main one carries the layer's name, helpers are named
``LAYER/...``, and the layer's output tensors keep their TensorRT names. A variant ONNX
cannot express raises :class:`~trtimport.errors.UnsupportedLayerError` with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from trtimport.errors import UnsupportedLayerError

if TYPE_CHECKING:
    from trtimport.export.writer import GraphWriter

Converter = Callable[["GraphWriter", Any], None]

#: LayerType name -> the ILayer subclass that exposes its attributes.
LAYER_CLASSES: dict[str, str] = {
    "ACTIVATION": "IActivationLayer",
    "ASSERTION": "IAssertionLayer",
    "ATTENTION_INPUT": "IAttentionInputLayer",
    "ATTENTION_OUTPUT": "IAttentionOutputLayer",
    "CAST": "ICastLayer",
    "CONCATENATION": "IConcatenationLayer",
    "CONDITION": "IConditionLayer",
    "CONDITIONAL_INPUT": "IIfConditionalInputLayer",
    "CONDITIONAL_OUTPUT": "IIfConditionalOutputLayer",
    "CONSTANT": "IConstantLayer",
    "CONVOLUTION": "IConvolutionLayer",
    "CUMULATIVE": "ICumulativeLayer",
    "DECONVOLUTION": "IDeconvolutionLayer",
    "DEQUANTIZE": "IDequantizeLayer",
    "EINSUM": "IEinsumLayer",
    "ELEMENTWISE": "IElementWiseLayer",
    "FILL": "IFillLayer",
    "GATHER": "IGatherLayer",
    "GRID_SAMPLE": "IGridSampleLayer",
    "IDENTITY": "IIdentityLayer",
    "KV_CACHE_UPDATE": "IKVCacheUpdateLayer",
    "ITERATOR": "IIteratorLayer",
    "LOOP_OUTPUT": "ILoopOutputLayer",
    "LRN": "ILRNLayer",
    "MATRIX_MULTIPLY": "IMatrixMultiplyLayer",
    "NON_ZERO": "INonZeroLayer",
    "NORMALIZATION": "INormalizationLayer",
    "ONE_HOT": "IOneHotLayer",
    "PADDING": "IPaddingLayer",
    "PARAMETRIC_RELU": "IParametricReLULayer",
    "POOLING": "IPoolingLayer",
    "QUANTIZE": "IQuantizeLayer",
    "RECURRENCE": "IRecurrenceLayer",
    "REDUCE": "IReduceLayer",
    "RESIZE": "IResizeLayer",
    "ROTARY_EMBEDDING": "IRotaryEmbeddingLayer",
    "REVERSE_SEQUENCE": "IReverseSequenceLayer",
    "SCALE": "IScaleLayer",
    "SCATTER": "IScatterLayer",
    "SELECT": "ISelectLayer",
    "SHAPE": "IShapeLayer",
    "SHUFFLE": "IShuffleLayer",
    "SLICE": "ISliceLayer",
    "SOFTMAX": "ISoftMaxLayer",
    "SQUEEZE": "ISqueezeLayer",
    "TOPK": "ITopKLayer",
    "TRIP_LIMIT": "ITripLimitLayer",
    "UNARY": "IUnaryLayer",
    "UNSQUEEZE": "IUnsqueezeLayer",
}

CONVERTERS: dict[str, Converter] = {}

INT64_MIN = np.iinfo(np.int64).min


def converts(*kinds: str) -> Callable[[Converter], Converter]:
    """Register a converter for layer types ``kinds`` (each only once)."""

    def register(fn: Converter) -> Converter:
        for kind in kinds:
            if kind in CONVERTERS:
                raise ValueError(f"two exporters for {kind}")
            CONVERTERS[kind] = fn
        return fn

    return register


# -- small helpers --------------------------------------------------------------------------


def inp(layer: Any, i: int) -> str | None:
    """Name of input ``i`` (None when absent)."""
    if i >= layer.num_inputs:
        return None
    t = layer.get_input(i)
    return None if t is None else str(t.name)


def out(layer: Any, i: int = 0) -> str:
    """Name of output ``i``."""
    return str(layer.get_output(i).name)


def rank_of(layer: Any, i: int = 0) -> int:
    """Rank of input ``i``."""
    return len(layer.get_input(i).shape)


def shape_of(tensor: Any) -> tuple[int, ...]:
    """A tensor's dimensions (-1 for dynamic)."""
    return tuple(int(d) for d in tensor.shape)


def dims(value: Any, n: int | None = None) -> list[int]:
    """A Dims/Permutation attribute as a list (first ``n`` entries of a Permutation)."""
    values = [int(v) for v in value]
    return values if n is None else values[:n]


def axes_of(mask: int, rank: int) -> list[int]:
    """A TensorRT axes bitmask as a list of axes."""
    return [a for a in range(rank) if mask & (1 << a)]


def weights_array(w: Any) -> np.ndarray:
    """A layer's Weights attribute as a numpy array (empty when unset)."""
    if w is None:
        return np.zeros(0, np.float32)
    return np.asarray(w)


def dtype_np(g: GraphWriter, trt_dtype: Any) -> Any:
    """numpy dtype for a TensorRT DataType."""
    try:
        return np.dtype(g.trt.nptype(trt_dtype))
    except TypeError as err:
        raise unsupported(f"data type {trt_dtype.name} has no numpy equivalent") from err


def as_int64(g: GraphWriter, layer: Any, tensor: str, dtype: Any) -> str:
    """Cast an index/shape tensor to int64 unless it already is."""
    if str(getattr(dtype, "name", dtype)).upper().endswith("INT64"):
        return tensor
    return g.cast(tensor, g.onnx.TensorProto.INT64, f"{layer.name}/to_int64")


def in_int64(g: GraphWriter, layer: Any, i: int) -> str:
    """Input ``i`` as int64."""
    return as_int64(g, layer, str(inp(layer, i)), layer.get_input(i).dtype)


def unsupported(reason: str) -> UnsupportedLayerError:
    """The error a converter raises for a variant ONNX cannot express."""
    return UnsupportedLayerError(reason)


# -- constants, identity, casts -------------------------------------------------------------


@converts("CONSTANT")
def constant(g: GraphWriter, layer: Any) -> None:
    """IConstantLayer -> Constant with the weights in the output's dtype and shape."""
    shape = dims(layer.shape)
    array = weights_array(layer.weights)
    want = dtype_np(g, layer.get_output(0).dtype)
    g.const(array.astype(want, copy=False).reshape(shape), layer.name, output=out(layer))


@converts("IDENTITY")
def identity(g: GraphWriter, layer: Any) -> None:
    """IIdentityLayer -> Identity, or Cast when the output type differs."""
    src, dst = layer.get_input(0).dtype, layer.get_output(0).dtype
    if src == dst:
        g.node("Identity", [inp(layer, 0)], [out(layer)], name=layer.name)
    else:
        g.node("Cast", [inp(layer, 0)], [out(layer)], name=layer.name, to=g.onnx_dtype(dst))


@converts("CAST")
def cast(g: GraphWriter, layer: Any) -> None:
    """ICastLayer -> Cast."""
    to = g.onnx_dtype(layer.get_output(0).dtype)
    g.node("Cast", [inp(layer, 0)], [out(layer)], name=layer.name, to=to)


@converts("ASSERTION")
def assertion(g: GraphWriter, layer: Any) -> None:
    """IAssertionLayer checks shapes at build time and has no outputs: nothing to emit."""


# -- elementwise ----------------------------------------------------------------------------

_ELEMENTWISE = {
    "SUM": "Add",
    "PROD": "Mul",
    "MAX": "Max",
    "MIN": "Min",
    "SUB": "Sub",
    "DIV": "Div",
    "POW": "Pow",
    "AND": "And",
    "OR": "Or",
    "XOR": "Xor",
    "EQUAL": "Equal",
    "GREATER": "Greater",
    "LESS": "Less",
}


@converts("ELEMENTWISE")
def elementwise(g: GraphWriter, layer: Any) -> None:
    """IElementWiseLayer -> the binary op (FLOOR_DIV as floor of the quotient)."""
    a, b = inp(layer, 0), inp(layer, 1)
    op = layer.op.name
    if op != "FLOOR_DIV":
        g.node(_ELEMENTWISE[op], [a, b], [out(layer)], name=layer.name)
        return
    dtype = dtype_np(g, layer.get_input(0).dtype)
    if np.issubdtype(dtype, np.floating):
        (q,) = g.node("Div", [a, b], 1, name=f"{layer.name}/div")
        g.node("Floor", [q], [out(layer)], name=layer.name)
    else:
        # Integer Div truncates; subtracting the floored remainder first makes it exact.
        (r,) = g.node("Mod", [a, b], 1, name=f"{layer.name}/mod", fmod=0)
        (d,) = g.node("Sub", [a, r], 1, name=f"{layer.name}/sub")
        g.node("Div", [d, b], [out(layer)], name=layer.name)


_UNARY = {
    "EXP": "Exp",
    "LOG": "Log",
    "SQRT": "Sqrt",
    "RECIP": "Reciprocal",
    "ABS": "Abs",
    "NEG": "Neg",
    "SIN": "Sin",
    "COS": "Cos",
    "TAN": "Tan",
    "SINH": "Sinh",
    "COSH": "Cosh",
    "ASIN": "Asin",
    "ACOS": "Acos",
    "ATAN": "Atan",
    "ASINH": "Asinh",
    "ACOSH": "Acosh",
    "ATANH": "Atanh",
    "CEIL": "Ceil",
    "FLOOR": "Floor",
    "ERF": "Erf",
    "NOT": "Not",
    "SIGN": "Sign",
    "ROUND": "Round",
    "ISINF": "IsInf",
    "ISNAN": "IsNaN",
}


@converts("UNARY")
def unary(g: GraphWriter, layer: Any) -> None:
    """IUnaryLayer -> the unary op."""
    g.node(_UNARY[layer.op.name], [inp(layer, 0)], [out(layer)], name=layer.name)


@converts("SELECT")
def select(g: GraphWriter, layer: Any) -> None:
    """ISelectLayer -> Where."""
    ins = [inp(layer, i) for i in range(3)]
    g.node("Where", ins, [out(layer)], name=layer.name)


@converts("PARAMETRIC_RELU")
def prelu(g: GraphWriter, layer: Any) -> None:
    """IParametricReLULayer -> PRelu."""
    g.node("PRelu", [inp(layer, 0), inp(layer, 1)], [out(layer)], name=layer.name)


def _scalar(g: GraphWriter, layer: Any, value: float, hint: str) -> str:
    return g.const(np.asarray(value, dtype=dtype_np(g, layer.get_input(0).dtype)), hint)


@converts("ACTIVATION")
def activation(g: GraphWriter, layer: Any) -> None:
    """IActivationLayer -> the ONNX activation (GELU and scaled forms decomposed)."""
    x, y, name = inp(layer, 0), out(layer), layer.name
    kind = str(layer.type.name)  # IActivationLayer.type is the activation type
    alpha, beta = float(layer.alpha), float(layer.beta)
    simple = {"RELU": "Relu", "SIGMOID": "Sigmoid", "TANH": "Tanh", "SOFTSIGN": "Softsign"}
    if kind in simple:
        g.node(simple[kind], [x], [y], name=name)
    elif kind == "LEAKY_RELU":
        g.node("LeakyRelu", [x], [y], name=name, alpha=alpha)
    elif kind == "ELU":
        g.node("Elu", [x], [y], name=name, alpha=alpha)
    elif kind == "SELU":
        g.node("Selu", [x], [y], name=name, alpha=alpha, gamma=beta)
    elif kind == "HARD_SIGMOID":
        g.node("HardSigmoid", [x], [y], name=name, alpha=alpha, beta=beta)
    elif kind == "THRESHOLDED_RELU":
        g.node("ThresholdedRelu", [x], [y], name=name, alpha=alpha)
    elif kind == "CLIP":
        lo, hi = _scalar(g, layer, alpha, f"{name}/min"), _scalar(g, layer, beta, f"{name}/max")
        g.node("Clip", [x, lo, hi], [y], name=name)
    elif kind == "SOFTPLUS":  # alpha * log(1 + exp(beta * x))
        (bx,) = g.node("Mul", [x, _scalar(g, layer, beta, f"{name}/beta")], 1, name=f"{name}/bx")
        (sp,) = g.node("Softplus", [bx], 1, name=f"{name}/softplus")
        g.node("Mul", [sp, _scalar(g, layer, alpha, f"{name}/alpha")], [y], name=name)
    elif kind == "SCALED_TANH":  # alpha * tanh(beta * x)
        (bx,) = g.node("Mul", [x, _scalar(g, layer, beta, f"{name}/beta")], 1, name=f"{name}/bx")
        (th,) = g.node("Tanh", [bx], 1, name=f"{name}/tanh")
        g.node("Mul", [th, _scalar(g, layer, alpha, f"{name}/alpha")], [y], name=name)
    elif kind == "GELU_ERF":  # 0.5 * x * (1 + erf(x / sqrt(2)))
        (s,) = g.node(
            "Mul", [x, _scalar(g, layer, 1 / math.sqrt(2), f"{name}/c")], 1, name=f"{name}/s"
        )
        (e,) = g.node("Erf", [s], 1, name=f"{name}/erf")
        (p,) = g.node("Add", [e, _scalar(g, layer, 1.0, f"{name}/one")], 1, name=f"{name}/add")
        (h,) = g.node("Mul", [x, _scalar(g, layer, 0.5, f"{name}/half")], 1, name=f"{name}/h")
        g.node("Mul", [h, p], [y], name=name)
    elif kind == "GELU_TANH":  # 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))
        (x3,) = g.node("Mul", [x, x], 1, name=f"{name}/x2")
        (x3,) = g.node("Mul", [x3, x], 1, name=f"{name}/x3")
        (c,) = g.node("Mul", [x3, _scalar(g, layer, 0.044715, f"{name}/k")], 1, name=f"{name}/c")
        (s,) = g.node("Add", [x, c], 1, name=f"{name}/s")
        root = math.sqrt(2 / math.pi)
        (s,) = g.node("Mul", [s, _scalar(g, layer, root, f"{name}/r")], 1, name=f"{name}/rs")
        (t,) = g.node("Tanh", [s], 1, name=f"{name}/tanh")
        (p,) = g.node("Add", [t, _scalar(g, layer, 1.0, f"{name}/one")], 1, name=f"{name}/add")
        (h,) = g.node("Mul", [x, _scalar(g, layer, 0.5, f"{name}/half")], 1, name=f"{name}/h")
        g.node("Mul", [h, p], [y], name=name)
    else:
        raise unsupported(f"activation {kind}")


# -- shapes and data movement ---------------------------------------------------------------


@converts("SHAPE")
def shape(g: GraphWriter, layer: Any) -> None:
    """IShapeLayer -> Shape (int64, Cast if TensorRT made int32)."""
    dst = layer.get_output(0).dtype
    if str(dst.name).upper() == "INT64":
        g.node("Shape", [inp(layer, 0)], [out(layer)], name=layer.name)
        return
    (s,) = g.node("Shape", [inp(layer, 0)], 1, name=f"{layer.name}/shape")
    g.node("Cast", [s], [out(layer)], name=layer.name, to=g.onnx_dtype(dst))


@converts("CONCATENATION")
def concatenation(g: GraphWriter, layer: Any) -> None:
    """IConcatenationLayer -> Concat."""
    ins = [inp(layer, i) for i in range(layer.num_inputs)]
    g.node("Concat", ins, [out(layer)], name=layer.name, axis=int(layer.axis))


@converts("SHUFFLE")
def shuffle(g: GraphWriter, layer: Any) -> None:
    """IShuffleLayer -> Transpose, Reshape, Transpose (each only when it does something)."""
    rank = rank_of(layer)
    steps: list[tuple[str, list[str | None], dict[str, Any]]] = []
    first = dims(layer.first_transpose, rank)
    if first != list(range(rank)):
        steps.append(("Transpose", [], {"perm": first}))
    new_rank = rank
    allowzero = 0 if layer.zero_is_placeholder else 1
    if inp(layer, 1) is not None:
        target = in_int64(g, layer, 1)
        steps.append(("Reshape", [target], {"allowzero": allowzero}))
        new_rank = shape_of(layer.get_input(1))[0]
    elif layer.reshape_dims is not None:
        reshape = dims(layer.reshape_dims)
        steps.append(
            ("Reshape", [g.ints(reshape, f"{layer.name}/shape")], {"allowzero": allowzero})
        )
        new_rank = len(reshape)
    second = dims(layer.second_transpose, new_rank)
    if second != list(range(new_rank)):
        steps.append(("Transpose", [], {"perm": second}))
    if not steps:
        steps.append(("Identity", [], {}))
    current = inp(layer, 0)
    for k, (op, extra, attrs) in enumerate(steps):
        last = k == len(steps) - 1
        outputs: list[str] | int = [out(layer)] if last else 1
        name = layer.name if last else f"{layer.name}/{op.lower()}"
        (current,) = g.node(op, [current, *extra], outputs, name=name, **attrs)


def _slice_bounds(
    g: GraphWriter, layer: Any, repeat: list[bool]
) -> tuple[str, str, str, str | None]:
    """(starts, ends, steps, axes) tensors for an ONNX Slice, static or from shape tensors.

    Axes in ``repeat`` have stride 0 (TensorRT's broadcast idiom); they are sliced to one
    element here and expanded by the caller.
    """
    name = layer.name
    axes = None
    if inp(layer, 5) is not None:
        axes = in_int64(g, layer, 5)
    elif slice_axes(layer) is not None:
        axes = g.ints(dims(slice_axes(layer)), f"{name}/axes")
    dynamic = any(inp(layer, i) is not None for i in (1, 2, 3))
    if not dynamic:
        first = dims(layer.start)
        ends, steps = [], []
        for s, n, st, rep in zip(first, dims(layer.shape), dims(layer.stride), repeat, strict=True):
            if rep:
                n, st = 1, 1
            stop = s + (n - 1) * st + (1 if st > 0 else -1) if n > 0 else s
            ends.append(INT64_MIN if st < 0 and stop < 0 else stop)
            steps.append(st)
        return (
            g.ints(first, f"{name}/starts"),
            g.ints(ends, f"{name}/ends"),
            g.ints(steps, f"{name}/steps"),
            axes,
        )
    parts = []
    for i, attr in ((1, "start"), (2, "shape"), (3, "stride")):
        if inp(layer, i) is not None:
            parts.append(in_int64(g, layer, i))
        elif attr == "stride":
            parts.append(
                g.ints(
                    [1 if r else v for v, r in zip(dims(layer.stride), repeat, strict=True)],
                    f"{name}/stride",
                )
            )
        else:
            parts.append(g.ints(dims(getattr(layer, attr)), f"{name}/{attr}"))
    start, size, stride = parts
    one = g.ints([1], f"{name}/one")
    zero = g.ints([0], f"{name}/zero")
    if any(repeat):
        mask = g.const(np.asarray(repeat), f"{name}/repeat")
        (size,) = g.node("Where", [mask, one, size], 1, name=f"{name}/size")
    (n1,) = g.node("Sub", [size, one], 1, name=f"{name}/n1")
    (span,) = g.node("Mul", [n1, stride], 1, name=f"{name}/span")
    (sign,) = g.node("Sign", [stride], 1, name=f"{name}/sign")
    (end,) = g.node("Add", [start, span], 1, name=f"{name}/last")
    (end,) = g.node("Add", [end, sign], 1, name=f"{name}/end")
    (neg_step,) = g.node("Less", [stride, zero], 1, name=f"{name}/neg_step")
    (neg_end,) = g.node("Less", [end, zero], 1, name=f"{name}/neg_end")
    (past,) = g.node("And", [neg_step, neg_end], 1, name=f"{name}/past")
    (empty,) = g.node("Equal", [size, zero], 1, name=f"{name}/empty")
    (end,) = g.node(
        "Where", [past, g.ints([INT64_MIN], f"{name}/min"), end], 1, name=f"{name}/clamp"
    )
    (end,) = g.node("Where", [empty, start, end], 1, name=f"{name}/ends")
    return start, end, stride, axes


def slice_axes(layer: Any) -> Any:
    """The slice layer's axes attribute (TensorRT 10.x before 10.8 has none)."""
    return getattr(layer, "axes", None)


_PAD_MODES = {"FILL": "constant", "CLAMP": "edge", "REFLECT": "reflect", "WRAP": "wrap"}


@converts("SLICE")
def slice_(g: GraphWriter, layer: Any) -> None:
    """ISliceLayer -> Slice; out-of-bounds modes with unit strides -> Pad (negative = crop)."""
    rank = rank_of(layer)
    mode = layer.mode.name
    if mode == "STRICT_BOUNDS":
        static_stride = dims(layer.stride) if inp(layer, 3) is None else [1] * rank
        repeat = [st == 0 for st in static_stride]
        starts, ends, steps, axes = _slice_bounds(g, layer, repeat)
        ins = [inp(layer, 0), starts, ends, axes, steps]
        if not any(repeat):
            g.node("Slice", ins, [out(layer)], name=layer.name)
            return
        (sliced,) = g.node("Slice", ins, 1, name=f"{layer.name}/slice")
        out_shape = shape_of(layer.get_output(0))
        if min(out_shape, default=0) >= 0:
            size = g.ints(out_shape, f"{layer.name}/size")
        elif axes is None and inp(layer, 2) is not None:
            size = in_int64(g, layer, 2)
        elif axes is None:
            size = g.ints(dims(layer.shape), f"{layer.name}/size")
        else:
            raise unsupported("stride-0 slice over chosen axes with a dynamic output shape")
        g.node("Expand", [sliced, size], [out(layer)], name=layer.name)
        return
    if any(s != 1 for s in dims(layer.stride)) or inp(layer, 3) is not None:
        raise unsupported(f"slice mode {mode} with strides other than 1")
    if mode not in _PAD_MODES:
        raise unsupported(f"slice mode {mode}")
    pads = _pad_amounts(g, layer, rank)
    fill = inp(layer, 4)
    if mode == "FILL" and fill is None:
        fill = _scalar(g, layer, 0, f"{layer.name}/fill")
    ins = [inp(layer, 0), pads, fill if mode == "FILL" else None]
    g.node("Pad", ins, [out(layer)], name=layer.name, mode=_PAD_MODES[mode])


def _pad_amounts(g: GraphWriter, layer: Any, rank: int) -> str:
    """Pad amounts of a unit-stride out-of-bounds slice: -start before, the overhang after.

    With sliced axes chosen (attribute or input 5) the amounts are scattered into full rank.
    """
    name = layer.name
    in_shape = shape_of(layer.get_input(0))
    static_axes = None if inp(layer, 5) is not None else slice_axes(layer)
    known = inp(layer, 1) is None and inp(layer, 2) is None and inp(layer, 5) is None
    if known and min(in_shape, default=0) >= 0:
        axes = [a % rank for a in dims(static_axes)] if static_axes is not None else range(rank)
        lo, hi = [0] * rank, [0] * rank
        for a, s, n in zip(axes, dims(layer.start), dims(layer.shape), strict=True):
            lo[a], hi[a] = -s, s + n - in_shape[a]
        return g.ints(lo + hi, f"{name}/pads")
    start = in_int64(g, layer, 1) if inp(layer, 1) is not None else None
    start = start or g.ints(dims(layer.start), f"{name}/start")
    size = in_int64(g, layer, 2) if inp(layer, 2) is not None else None
    size = size or g.ints(dims(layer.shape), f"{name}/size")
    (extent,) = g.node("Shape", [inp(layer, 0)], 1, name=f"{name}/in_shape")
    axes_t = None
    if inp(layer, 5) is not None:
        axes_t = in_int64(g, layer, 5)
    elif static_axes is not None:
        axes_t = g.ints([a % rank for a in dims(static_axes)], f"{name}/axes")
    if axes_t is not None:
        (extent,) = g.node("Gather", [extent, axes_t], 1, name=f"{name}/extent", axis=0)
    (before,) = g.node("Neg", [start], 1, name=f"{name}/before")
    (end,) = g.node("Add", [start, size], 1, name=f"{name}/end")
    (after,) = g.node("Sub", [end, extent], 1, name=f"{name}/after")
    if axes_t is not None:
        zeros = g.ints([0] * rank, f"{name}/zeros")
        (before,) = g.node(
            "ScatterElements", [zeros, axes_t, before], 1, name=f"{name}/before_full", axis=0
        )
        (after,) = g.node(
            "ScatterElements", [zeros, axes_t, after], 1, name=f"{name}/after_full", axis=0
        )
    return g.node("Concat", [before, after], 1, name=f"{name}/pads", axis=0)[0]


@converts("PADDING")
def padding(g: GraphWriter, layer: Any) -> None:
    """IPaddingLayer -> Pad with zeros on the trailing dimensions."""
    rank = rank_of(layer)
    pre, post = dims(layer.pre_padding_nd), dims(layer.post_padding_nd)
    lead = [0] * (rank - len(pre))
    pads = g.ints(lead + pre + lead + post, f"{layer.name}/pads")
    g.node("Pad", [inp(layer, 0), pads], [out(layer)], name=layer.name, mode="constant")


@converts("SQUEEZE", "UNSQUEEZE")
def squeeze(g: GraphWriter, layer: Any) -> None:
    """ISqueezeLayer/IUnsqueezeLayer -> Squeeze/Unsqueeze (no axes: every size-1 axis)."""
    op = "Squeeze" if g.kind == "SQUEEZE" else "Unsqueeze"
    axes = in_int64(g, layer, 1) if inp(layer, 1) is not None else None
    g.node(op, [inp(layer, 0), axes], [out(layer)], name=layer.name)


@converts("GATHER")
def gather(g: GraphWriter, layer: Any) -> None:
    """IGatherLayer -> Gather, GatherElements or GatherND."""
    mode = layer.mode.name
    ins = [inp(layer, 0), inp(layer, 1)]
    batch = int(layer.num_elementwise_dims)
    if mode == "DEFAULT" and batch == 0:
        g.node("Gather", ins, [out(layer)], name=layer.name, axis=int(layer.axis))
    elif mode == "ELEMENT":
        g.node("GatherElements", ins, [out(layer)], name=layer.name, axis=int(layer.axis))
    elif mode == "ND":
        ins[1] = in_int64(g, layer, 1)
        g.node("GatherND", ins, [out(layer)], name=layer.name, batch_dims=batch)
    else:
        raise unsupported(f"gather mode {mode} with {batch} elementwise dims")


@converts("SCATTER")
def scatter(g: GraphWriter, layer: Any) -> None:
    """IScatterLayer -> ScatterElements or ScatterND."""
    ins = [inp(layer, 0), inp(layer, 1), inp(layer, 2)]
    if layer.mode.name == "ELEMENT":
        g.node("ScatterElements", ins, [out(layer)], name=layer.name, axis=int(layer.axis))
    else:
        ins[1] = in_int64(g, layer, 1)
        g.node("ScatterND", ins, [out(layer)], name=layer.name)


#: Opset that introduced the quantized element types (8-bit integers: any).
_QUANT_TYPE_OPSETS = {"FP8": 19, "INT4": 21, "FP4": 23}


#: Layer types whose ONNX op is newer than opset 17.
_LAYER_OPSETS = {
    "ATTENTION_INPUT": 23,
    "ATTENTION_OUTPUT": 23,
    "ROTARY_EMBEDDING": 23,
    "KV_CACHE_UPDATE": 24,
}


def needed_opset(kind: str, layer: Any) -> int:
    """The lowest ONNX opset that can express ``layer`` (1 when any will do)."""
    if kind in ("QUANTIZE", "DEQUANTIZE"):
        quantized = layer.get_output(0) if kind == "QUANTIZE" else layer.get_input(0)
        return _QUANT_TYPE_OPSETS.get(str(quantized.dtype.name), 1)
    if kind in _LAYER_OPSETS:
        return _LAYER_OPSETS[kind]
    if kind == "SLICE" and layer.mode.name == "WRAP":
        return 19  # Pad's wrap mode
    if kind == "UNARY" and layer.op.name in ("ISINF", "ISNAN"):
        dtype = layer.get_input(0).dtype.name
        if dtype == "BF16" or (dtype == "HALF" and layer.op.name == "ISINF"):
            return 20  # the opset that gave IsInf float16 and both bfloat16

    return 1


def _fill_shape(g: GraphWriter, layer: Any) -> str:
    """The fill's output shape as an int64 tensor (from input 0, else the static shape)."""
    if inp(layer, 0) is not None:
        return in_int64(g, layer, 0)
    return g.ints(shape_of(layer.get_output(0)), f"{layer.name}/shape")


def _random_fill(g: GraphWriter, layer: Any) -> None:
    """Random IFillLayer -> RandomUniformLike/RandomNormalLike of a tensor of the fill's shape.

    alpha/beta are (min, max) or (mean, standard deviation); when they are tensors the sample
    is drawn from the standard distribution and scaled.
    """
    name = layer.name
    uniform = layer.operation.name == "RANDOM_UNIFORM"
    op = "RandomUniformLike" if uniform else "RandomNormalLike"
    onnx_dtype = g.onnx_dtype(layer.get_output(0).dtype)
    (like,) = g.node("ConstantOfShape", [_fill_shape(g, layer)], 1, name=f"{name}/like")
    a_in, b_in = inp(layer, 1), inp(layer, 2)
    if a_in is None and b_in is None:
        alpha, beta = float(layer.alpha), float(layer.beta)
        params = {"low": alpha, "high": beta} if uniform else {"mean": alpha, "scale": beta}
        g.node(op, [like], [out(layer)], name=name, dtype=onnx_dtype, **params)
        return
    dtype = dtype_np(g, layer.get_output(0).dtype)
    a, b = (
        g.cast(t, onnx_dtype, f"{name}/{h}")
        if t
        else g.const(np.asarray(getattr(layer, h), dtype), f"{name}/{h}")
        for t, h in ((a_in, "alpha"), (b_in, "beta"))
    )
    (sample,) = g.node(op, [like], 1, name=name, dtype=onnx_dtype)
    if uniform:  # low + u * (high - low)
        (b,) = g.node("Sub", [b, a], 1, name=f"{name}/range")
    (scaled,) = g.node("Mul", [sample, b], 1, name=f"{name}/scale")
    g.node("Add", [scaled, a], [out(layer)], name=f"{name}/shift")


@converts("FILL")
def fill(g: GraphWriter, layer: Any) -> None:
    """IFillLayer: random fills -> RandomUniformLike/RandomNormalLike; LINSPACE ->
    alpha + sum_k beta[k] * index_k, expanded to the shape."""
    name = layer.name
    if layer.operation.name != "LINSPACE":
        _random_fill(g, layer)
        return
    dtype = dtype_np(g, layer.get_output(0).dtype)
    rank = len(shape_of(layer.get_output(0)))
    shape = _fill_shape(g, layer)
    onnx_dtype = g.onnx_dtype(layer.get_output(0).dtype)
    if inp(layer, 1) is not None:
        alpha = g.cast(str(inp(layer, 1)), onnx_dtype, f"{name}/alpha")
    else:
        alpha = g.const(np.asarray(layer.alpha, dtype=dtype), f"{name}/alpha")
    beta_in = inp(layer, 2)
    beta_values = None if beta_in is not None else np.atleast_1d(np.asarray(layer.beta, np.float64))
    terms = [alpha]
    for k in range(rank):
        if beta_values is not None and (k >= beta_values.size or beta_values[k] == 0):
            continue
        (n,) = g.node("Gather", [shape, g.ints([k], f"{name}/k")], 1, name=f"{name}/dim{k}")
        (n,) = g.node("Squeeze", [n], 1, name=f"{name}/n{k}")
        zero, one = g.const(np.int64(0), f"{name}/zero"), g.const(np.int64(1), f"{name}/one")
        (idx,) = g.node("Range", [zero, n, one], 1, name=f"{name}/range{k}")
        (idx,) = g.node("Cast", [idx], 1, name=f"{name}/cast{k}", to=onnx_dtype)
        if beta_values is not None:
            step = g.const(np.asarray(beta_values[k], dtype=dtype), f"{name}/beta{k}")
        else:
            (step,) = g.node("Gather", [beta_in, g.ints([k], f"{name}/bk")], 1, name=f"{name}/b")
            (step,) = g.node("Cast", [step], 1, name=f"{name}/bcast{k}", to=onnx_dtype)
        (term,) = g.node("Mul", [idx, step], 1, name=f"{name}/term{k}")
        axes = [a for a in range(rank) if a != k]
        if axes:
            (term,) = g.node(
                "Unsqueeze", [term, g.ints(axes, f"{name}/ax{k}")], 1, name=f"{name}/u{k}"
            )
        terms.append(term)
    total = terms[0]
    for k, term in enumerate(terms[1:]):
        (total,) = g.node("Add", [total, term], 1, name=f"{name}/sum{k}")
    g.node("Expand", [total, shape], [out(layer)], name=name)


@converts("NON_ZERO")
def non_zero(g: GraphWriter, layer: Any) -> None:
    """INonZeroLayer -> NonZero."""
    g.node("NonZero", [inp(layer, 0)], [out(layer)], name=layer.name)


@converts("ONE_HOT")
def one_hot(g: GraphWriter, layer: Any) -> None:
    """IOneHotLayer -> OneHot(indices, depth, values) with int64 indices and depth."""
    ins = [in_int64(g, layer, 0), in_int64(g, layer, 2), inp(layer, 1)]
    axis = int(layer.axis)
    if str(layer.get_input(1).dtype.name).upper() != "INT32":
        g.node("OneHot", ins, [out(layer)], name=layer.name, axis=axis)
        return
    # int32 values are carried as int64, the integer type OneHot implementations share.
    ins[2] = in_int64(g, layer, 1)
    (hot,) = g.node("OneHot", ins, 1, name=f"{layer.name}/onehot", axis=axis)
    g.node("Cast", [hot], [out(layer)], name=layer.name, to=g.onnx.TensorProto.INT32)


@converts("REVERSE_SEQUENCE")
def reverse_sequence(g: GraphWriter, layer: Any) -> None:
    """IReverseSequenceLayer -> ReverseSequence (lengths as int64)."""
    lengths = in_int64(g, layer, 1)
    g.node(
        "ReverseSequence",
        [inp(layer, 0), lengths],
        [out(layer)],
        name=layer.name,
        batch_axis=int(layer.batch_axis),
        time_axis=int(layer.sequence_axis),
    )


# -- reductions, softmax, matmul ------------------------------------------------------------

_REDUCE = {
    "SUM": "ReduceSum",
    "PROD": "ReduceProd",
    "MAX": "ReduceMax",
    "MIN": "ReduceMin",
    "AVG": "ReduceMean",
}


def reduce_node(
    g: GraphWriter,
    op: str,
    x: str,
    axes: Sequence[int],
    keepdims: bool,
    outputs: list[str] | int,
    name: str,
) -> str:
    """An ONNX reduction with ``axes`` as input or attribute, whichever the opset wants."""
    as_input = op == "ReduceSum" or g.opset >= 18
    if as_input:
        ins = [x, g.ints(list(axes), f"{name}/axes")]
        return g.node(op, ins, outputs, name=name, keepdims=int(keepdims))[0]
    return g.node(op, [x], outputs, name=name, axes=list(axes), keepdims=int(keepdims))[0]


@converts("REDUCE")
def reduce(g: GraphWriter, layer: Any) -> None:
    """IReduceLayer -> ReduceSum/Prod/Max/Min/Mean."""
    op = _REDUCE.get(layer.op.name)
    if op is None:
        raise unsupported(f"reduce op {layer.op.name}")
    axes = axes_of(int(layer.axes), rank_of(layer))
    reduce_node(g, op, str(inp(layer, 0)), axes, layer.keep_dims, [out(layer)], layer.name)


@converts("SOFTMAX")
def softmax(g: GraphWriter, layer: Any) -> None:
    """ISoftMaxLayer -> Softmax over its single axis."""
    axes = axes_of(int(layer.axes), rank_of(layer))
    if len(axes) != 1:
        raise unsupported(f"softmax over axes {axes}")
    g.node("Softmax", [inp(layer, 0)], [out(layer)], name=layer.name, axis=axes[0])


@converts("TOPK")
def topk(g: GraphWriter, layer: Any) -> None:
    """ITopKLayer -> TopK (indices cast to TensorRT's int32)."""
    rank = rank_of(layer)
    axes = axes_of(int(layer.axes), rank)
    if inp(layer, 1) is not None:
        k = in_int64(g, layer, 1)
        (k,) = g.node("Reshape", [k, g.ints([1], f"{layer.name}/k1")], 1, name=f"{layer.name}/k")
    else:
        k = g.ints([int(layer.k)], f"{layer.name}/k")
    idx = g.fresh(f"{layer.name}/indices64")
    g.node(
        "TopK",
        [inp(layer, 0), k],
        [out(layer, 0), idx],
        name=layer.name,
        axis=axes[0],
        largest=int(layer.op.name == "MAX"),
        sorted=1,
    )
    g.node(
        "Cast",
        [idx],
        [out(layer, 1)],
        name=f"{layer.name}/indices",
        to=g.onnx_dtype(layer.get_output(1).dtype),
    )


def _matrix_operand(g: GraphWriter, layer: Any, i: int, op: str, vector_axis: int) -> str:
    x = str(inp(layer, i))
    rank = rank_of(layer, i)
    if op == "TRANSPOSE":
        perm = [*range(rank - 2), rank - 1, rank - 2]
        return g.node("Transpose", [x], 1, name=f"{layer.name}/t{i}", perm=perm)[0]
    if op == "VECTOR":
        axes = g.ints([vector_axis], f"{layer.name}/v{i}")
        return g.node("Unsqueeze", [x, axes], 1, name=f"{layer.name}/vec{i}")[0]
    return x


@converts("MATRIX_MULTIPLY")
def matrix_multiply(g: GraphWriter, layer: Any) -> None:
    """IMatrixMultiplyLayer -> MatMul (transposes and vector operands made explicit)."""
    op0, op1 = layer.op0.name, layer.op1.name
    a = _matrix_operand(g, layer, 0, op0, -2)
    b = _matrix_operand(g, layer, 1, op1, -1)
    squeeze_axes = [ax for ax, op in ((-2, op0), (-1, op1)) if op == "VECTOR"]
    if not squeeze_axes:
        g.node("MatMul", [a, b], [out(layer)], name=layer.name)
        return
    (m,) = g.node("MatMul", [a, b], 1, name=f"{layer.name}/matmul")
    axes = g.ints(squeeze_axes, f"{layer.name}/squeeze_axes")
    g.node("Squeeze", [m, axes], [out(layer)], name=layer.name)


@converts("EINSUM")
def einsum(g: GraphWriter, layer: Any) -> None:
    """IEinsumLayer -> Einsum."""
    ins = [inp(layer, i) for i in range(layer.num_inputs)]
    g.node("Einsum", ins, [out(layer)], name=layer.name, equation=str(layer.equation))


@converts("CUMULATIVE")
def cumulative(g: GraphWriter, layer: Any) -> None:
    """ICumulativeLayer (sum) -> CumSum."""
    if layer.op.name != "SUM":
        raise unsupported(f"cumulative op {layer.op.name}")
    g.node(
        "CumSum",
        [inp(layer, 0), inp(layer, 1)],
        [out(layer)],
        name=layer.name,
        exclusive=int(layer.exclusive),
        reverse=int(layer.reverse),
    )


# -- convolution, pooling and friends -------------------------------------------------------


def _spatial_pads(
    layer: Any, kernel: Sequence[int], strides: Sequence[int], dilations: Sequence[int]
) -> tuple[list[int], list[int], bool]:
    """(pads before, pads after, dynamic) reproducing TensorRT's output size with floor rounding.

    TensorRT's padding modes (explicit round down/up, same upper/lower) all come down to a
    begin padding and the output size it computed; the end padding is whatever makes ONNX's
    floor formula reach that size.
    """
    n = len(kernel)
    in_dims = shape_of(layer.get_input(0))[-n:]
    out_dims = shape_of(layer.get_output(0))[-n:]
    mode = layer.padding_mode.name
    pre, post = dims(layer.pre_padding), dims(layer.post_padding)
    if min(in_dims) < 0 or min(out_dims) < 0:
        if mode not in ("EXPLICIT_ROUND_DOWN",):
            raise unsupported(f"padding mode {mode} with dynamic spatial dimensions")
        return pre, post, True
    befores, afters = [], []
    for i in range(n):
        extent = dilations[i] * (kernel[i] - 1) + 1
        total = max((out_dims[i] - 1) * strides[i] + extent - in_dims[i], 0)
        if mode == "SAME_UPPER":
            before = total // 2
        elif mode == "SAME_LOWER":
            before = total - total // 2
        else:
            before = pre[i]
        befores.append(before)
        afters.append(max(total - before, 0))
    return befores, afters, False


@converts("CONVOLUTION", "DECONVOLUTION")
def convolution(g: GraphWriter, layer: Any) -> None:
    """IConvolutionLayer -> Conv, IDeconvolutionLayer -> ConvTranspose."""
    name = layer.name
    deconv = g.kind == "DECONVOLUTION"
    ksize = dims(layer.kernel_size_nd)
    strides, dilations = dims(layer.stride_nd), dims(layer.dilation_nd)
    groups, maps = int(layer.num_groups), int(layer.num_output_maps)
    in_dtype = dtype_np(g, layer.get_input(0).dtype)
    kernel = inp(layer, 1)
    if kernel is None:
        w = weights_array(layer.kernel)
        per = maps * int(np.prod(ksize))
        shape = [w.size // per * groups, maps // groups] if deconv else [maps, w.size // per]
        kernel = g.const(w.astype(in_dtype, copy=False).reshape(*shape, *ksize), f"{name}/kernel")
    bias = inp(layer, 2)
    if bias is None:
        b = weights_array(layer.bias)
        if b.size:
            bias = g.const(b.astype(in_dtype, copy=False), f"{name}/bias")
    attrs: dict[str, Any] = {
        "kernel_shape": ksize,
        "strides": strides,
        "dilations": dilations,
        "group": groups,
    }
    if deconv:
        pre, post = dims(layer.pre_padding), dims(layer.post_padding)
        mode = layer.padding_mode.name
        if mode.startswith("SAME"):
            attrs["auto_pad"] = mode
            pre, post = [0] * len(pre), [0] * len(post)
        else:
            attrs["pads"] = [max(p, 0) for p in pre] + [max(p, 0) for p in post]
        if any(p < 0 for p in post):
            attrs["output_padding"] = [max(-p, 0) for p in post]
        if any(p < 0 for p in pre):
            raise unsupported("negative begin padding in a deconvolution")
        op = "ConvTranspose"
    else:
        before, after, _ = _spatial_pads(layer, ksize, strides, dilations)
        attrs["pads"] = before + after
        op = "Conv"
    g.node(op, [inp(layer, 0), kernel, bias], [out(layer)], name=name, **attrs)


@converts("POOLING")
def pooling(g: GraphWriter, layer: Any) -> None:
    """IPoolingLayer -> MaxPool/AveragePool with TensorRT's output size."""
    kind = str(layer.type.name)  # IPoolingLayer.type is the pooling type
    window, strides = dims(layer.window_size_nd), dims(layer.stride_nd)
    n = len(window)
    before, after, dynamic = _spatial_pads(layer, window, strides, [1] * n)
    attrs: dict[str, Any] = {"kernel_shape": window, "strides": strides}
    in_dims = shape_of(layer.get_input(0))[-n:]
    out_dims = shape_of(layer.get_output(0))[-n:]
    if kind == "MAX":
        op = "MaxPool"
        attrs["pads"] = before + after
        if dynamic and layer.padding_mode.name == "EXPLICIT_ROUND_UP":
            attrs["ceil_mode"] = 1
    elif kind == "AVERAGE":
        op = "AveragePool"
        attrs["count_include_pad"] = 0 if layer.average_count_excludes_padding else 1
        if attrs["count_include_pad"] and not dynamic:
            # Extra end padding would be counted; keep TensorRT's own pads and round up.
            pre, post = dims(layer.pre_padding), dims(layer.post_padding)
            floor = [
                (d + a + b - k) // s + 1
                for d, a, b, k, s in zip(in_dims, pre, post, window, strides, strict=True)
            ]
            if layer.padding_mode.name.startswith("SAME"):
                attrs["pads"] = before + after
            else:
                attrs["pads"] = pre + post
                if list(out_dims) != floor:
                    attrs["ceil_mode"] = 1
        else:
            attrs["pads"] = before + after
    else:
        raise unsupported(f"pooling type {kind}")
    g.node(op, [inp(layer, 0)], [out(layer)], name=layer.name, **attrs)


@converts("LRN")
def lrn(g: GraphWriter, layer: Any) -> None:
    """ILRNLayer -> LRN."""
    g.node(
        "LRN",
        [inp(layer, 0)],
        [out(layer)],
        name=layer.name,
        size=int(layer.window_size),
        alpha=float(layer.alpha),
        beta=float(layer.beta),
        bias=float(layer.k),
    )


@converts("SCALE")
def scale(g: GraphWriter, layer: Any) -> None:
    """IScaleLayer -> (x * scale + shift) ** power with per-mode broadcast shapes."""
    name = layer.name
    rank = rank_of(layer)
    x_shape = shape_of(layer.get_input(0))
    axis = int(layer.channel_axis)
    mode = layer.mode.name
    dtype = dtype_np(g, layer.get_input(0).dtype)
    if mode == "UNIFORM":
        shape: list[int] = []
    elif mode == "CHANNEL":
        shape = [-1] + [1] * (rank - axis - 1)
    else:
        shape = list(x_shape[axis:])
    steps = [("Mul", weights_array(layer.scale)), ("Add", weights_array(layer.shift))]
    steps.append(("Pow", weights_array(layer.power)))
    steps = [(op, w) for op, w in steps if w.size]
    current = str(inp(layer, 0))
    if not steps:
        g.node("Identity", [current], [out(layer)], name=name)
        return
    for k, (op, w) in enumerate(steps):
        last = k == len(steps) - 1
        value = g.const(w.astype(dtype, copy=False).reshape(shape or ()), f"{name}/{op.lower()}")
        outputs: list[str] | int = [out(layer)] if last else 1
        (current,) = g.node(op, [current, value], outputs, name=name if last else f"{name}/{op}")


@converts("NORMALIZATION")
def normalization(g: GraphWriter, layer: Any) -> None:
    """INormalizationLayer -> mean/variance normalization over its axes, then scale and bias."""
    name = layer.name
    x = str(inp(layer, 0))
    rank = rank_of(layer)
    dtype = dtype_np(g, layer.get_input(0).dtype)
    groups = int(layer.num_groups)
    axes = axes_of(int(layer.axes), rank)
    source = x
    if groups > 1:
        (x,) = g.node(
            "Reshape", [x, g.ints([0, groups, -1], f"{name}/grouped")], 1, name=f"{name}/group"
        )
        axes = [2]
    mean = reduce_node(g, "ReduceMean", x, axes, True, 1, f"{name}/mean")
    (d,) = g.node("Sub", [x, mean], 1, name=f"{name}/centered")
    (sq,) = g.node("Mul", [d, d], 1, name=f"{name}/squared")
    var = reduce_node(g, "ReduceMean", sq, axes, True, 1, f"{name}/var")
    eps = g.const(np.asarray(layer.epsilon, dtype=dtype), f"{name}/eps")
    (v,) = g.node("Add", [var, eps], 1, name=f"{name}/var_eps")
    (s,) = g.node("Sqrt", [v], 1, name=f"{name}/std")
    (y,) = g.node("Div", [d, s], 1, name=f"{name}/normalized")
    if groups > 1:
        (shape,) = g.node("Shape", [source], 1, name=f"{name}/shape")
        (y,) = g.node("Reshape", [y, shape], 1, name=f"{name}/ungroup")
    (y,) = g.node("Mul", [y, inp(layer, 1)], 1, name=f"{name}/scaled")
    g.node("Add", [y, inp(layer, 2)], [out(layer)], name=name)


_GRID_MODES = {"LINEAR": "bilinear", "NEAREST": "nearest", "CUBIC": "bicubic"}
_GRID_PADDING = {"FILL": "zeros", "CLAMP": "border", "REFLECT": "reflection"}


@converts("GRID_SAMPLE")
def grid_sample(g: GraphWriter, layer: Any) -> None:
    """IGridSampleLayer -> GridSample."""
    mode, pad = layer.interpolation_mode.name, layer.sample_mode.name
    if pad not in _GRID_PADDING:
        raise unsupported(f"grid sample mode {pad}")
    g.node(
        "GridSample",
        [inp(layer, 0), inp(layer, 1)],
        [out(layer)],
        name=layer.name,
        # Opset 20 renamed bilinear/bicubic to linear/cubic (and dropped the old names).
        mode=_GRID_MODES[mode] if g.opset < 20 else _GRID_MODES[mode].removeprefix("bi"),
        padding_mode=_GRID_PADDING[pad],
        align_corners=int(layer.align_corners),
    )


_RESIZE_MODES = {"NEAREST": "nearest", "LINEAR": "linear", "CUBIC": "cubic"}
_ROUNDING = {
    "HALF_UP": "round_prefer_ceil",
    "HALF_DOWN": "round_prefer_floor",
    "FLOOR": "floor",
    "CEIL": "ceil",
}


@converts("RESIZE")
def resize(g: GraphWriter, layer: Any) -> None:
    """IResizeLayer -> Resize with the same coordinate transformation and scales or sizes."""
    name = layer.name
    transform = layer.coordinate_transformation.name
    if transform == "HALF_PIXEL":
        upper = layer.selector_for_single_pixel.name == "UPPER"
        coordinate = "pytorch_half_pixel" if upper else "half_pixel"
    else:
        coordinate = transform.lower()
    scales = sizes = None
    second = inp(layer, 1)
    if second is not None:
        kind = str(layer.get_input(1).dtype.name).upper()
        if kind in ("FLOAT", "HALF"):
            scales = g.cast(second, g.onnx.TensorProto.FLOAT, f"{name}/scales")
        else:
            sizes = in_int64(g, layer, 1)
    else:
        given = [float(s) for s in (layer.scales or [])]
        if given:
            scales = g.const(np.asarray(given, np.float32), f"{name}/scales")
        else:
            sizes = g.ints(dims(layer.shape), f"{name}/sizes")
    g.node(
        "Resize",
        [inp(layer, 0), None, scales, sizes],
        [out(layer)],
        name=name,
        mode=_RESIZE_MODES[layer.resize_mode.name],
        coordinate_transformation_mode=coordinate,
        nearest_mode=_ROUNDING[layer.nearest_rounding.name],
        cubic_coeff_a=float(layer.cubic_coeff),
        exclude_outside=int(layer.exclude_outside),
    )


# -- quantization ---------------------------------------------------------------------------


def _zero_point(g: GraphWriter, layer: Any) -> str:
    """A zero zero-point of the quantized type, shaped like the scale (float8/4-bit too)."""
    zp_shape = shape_of(layer.get_input(1))
    to = g.onnx_dtype(layer.get_output(0).dtype)
    tensor = g.onnx.helper.make_tensor(
        g.fresh(f"{layer.name}/zero_point"), to, zp_shape, [0] * math.prod(zp_shape)
    )
    (zp,) = g.node("Constant", [], [tensor.name], name=f"{layer.name}/zero_point", value=tensor)
    return zp


@converts("QUANTIZE", "DEQUANTIZE")
def quantize(g: GraphWriter, layer: Any) -> None:
    """IQuantizeLayer/IDequantizeLayer -> QuantizeLinear/DequantizeLinear."""
    name = layer.name
    quant = g.kind == "QUANTIZE"
    try:
        shape = getattr(layer, "block_shape", None)  # TensorRT 10.7+
        block = dims(shape) if shape is not None else []
    except RuntimeError:  # TensorRT raises when no block shape was set
        block = []
    if block:
        raise unsupported("block quantization")
    x, s, zp = inp(layer, 0), inp(layer, 1), inp(layer, 2)
    if quant and zp is None:
        # ONNX infers the quantized type from the zero point (uint8 without one).
        zp = _zero_point(g, layer)
    scale_rank = len(shape_of(layer.get_input(1)))
    axis = int(layer.axis) if scale_rank else None
    op = "QuantizeLinear" if quant else "DequantizeLinear"
    g.node(op, [x, s, zp], [out(layer)], name=name, axis=axis)


# -- if-conditionals ------------------------------------------------------------------------


def collect_conditions(layers: Sequence[tuple[str, Any]]) -> dict[str, str]:
    """IIfConditional name -> its condition tensor, from the (kind, layer) condition layers."""
    found = {}
    for kind, layer in layers:
        if kind == "CONDITION":
            found[str(layer.conditional.name)] = str(layer.get_input(0).name)
    return found


@converts("CONDITION")
def condition(g: GraphWriter, layer: Any) -> None:
    """IConditionLayer only names the condition; the outputs select with it."""


@converts("CONDITIONAL_INPUT")
def conditional_input(g: GraphWriter, layer: Any) -> None:
    """IIfConditionalInputLayer -> Identity (both branches read the outer tensor)."""
    g.node("Identity", [inp(layer, 0)], [out(layer)], name=layer.name)


@converts("CONDITIONAL_OUTPUT")
def conditional_output(g: GraphWriter, layer: Any) -> None:
    """IIfConditionalOutputLayer -> If whose branches return the two branch results.

    Both branches' layers are exported unconditionally (they have no side effects); the If
    picks the result, so branches may produce different shapes.
    """
    helper = g.onnx.helper
    cond = g.conditions.get(str(layer.conditional.name))
    if cond is None:
        raise unsupported("conditional output without a condition layer")
    dtype = g.onnx_dtype(layer.get_output(0).dtype)
    branches = []
    for i, label in ((0, "then"), (1, "else")):
        result = g.fresh(f"{layer.name}/{label}")
        node = helper.make_node("Identity", [inp(layer, i)], [result], name=f"{layer.name}/{label}")
        value = helper.make_tensor_value_info(result, dtype, None)
        branches.append(helper.make_graph([node], f"{layer.name}_{label}", [], [value]))
    g.node(
        "If",
        [cond],
        [out(layer)],
        name=layer.name,
        then_branch=branches[0],
        else_branch=branches[1],
    )


# -- attention building blocks (opset 23/24 ops) --------------------------------------------


@converts("ROTARY_EMBEDDING")
def rotary_embedding(g: GraphWriter, layer: Any) -> None:
    """IRotaryEmbeddingLayer (input [batch, heads, sequence, head size]) -> RotaryEmbedding-23."""
    ins = [inp(layer, i) for i in range(layer.num_inputs)]
    g.node(
        "RotaryEmbedding",
        ins,
        [out(layer)],
        name=layer.name,
        interleaved=int(layer.interleaved),
        rotary_embedding_dim=int(layer.rotary_embedding_dim) or None,
    )


@converts("KV_CACHE_UPDATE")
def kv_cache_update(g: GraphWriter, layer: Any) -> None:
    """IKVCacheUpdateLayer (BHND cache, update written along the sequence axis) ->
    TensorScatter-24 with int64 write indices."""
    if layer.update_form.name != "PADDED_BHND":
        raise unsupported(f"KV cache update form {layer.update_form.name}")
    indices = in_int64(g, layer, 2) if inp(layer, 2) is not None else None
    g.node(
        "TensorScatter",
        [inp(layer, 0), inp(layer, 1), indices],
        [out(layer)],
        name=layer.name,
        axis=-2,
        mode=str(layer.cache_mode.name).lower(),
    )


@converts("ATTENTION_INPUT")
def attention(g: GraphWriter, layer: Any) -> None:
    """IAttention (its input layer) -> Attention-23 on BHND query/key/value, scale 1.

    TensorRT's attention applies no scale of its own (the parser scales Q and K before it);
    causal masks are upper-left aligned in both.
    """
    att = layer.attention
    problems = []
    if att.norm_op.name != "SOFTMAX":
        problems.append(f"normalization {att.norm_op.name}")
    if att.query_form.name != "PADDED_BHND" or att.key_value_form.name != "PADDED_BHND":
        problems.append(f"layouts {att.query_form.name}/{att.key_value_form.name}")
    if att.causal and att.causal_kind.name != "UPPER_LEFT":
        problems.append(f"causal mask {att.causal_kind.name}")
    if att.normalization_quantize_scale is not None:
        problems.append("quantized normalization")
    if att.query_lengths is not None or att.key_value_lengths is not None:
        problems.append("sequence lengths")
    if problems:
        raise unsupported(f"attention with {', '.join(problems)}")
    mask = None if att.mask is None else str(att.mask.name)
    g.node(
        "Attention",
        [inp(layer, 0), inp(layer, 1), inp(layer, 2), mask],
        [out(layer)],
        name=layer.name,
        is_causal=int(bool(att.causal)),
        scale=1.0,
    )


@converts("ATTENTION_OUTPUT")
def attention_output(g: GraphWriter, layer: Any) -> None:
    """IAttentionOutputLayer -> Identity of the Attention node's result."""
    g.node("Identity", [inp(layer, 0)], [out(layer)], name=layer.name)
