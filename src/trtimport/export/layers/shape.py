"""Shapes and data movement: shape, concatenation, shuffle, slice, pad, gather, scatter, fill."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from trtimport.export.layers.common import (
    INT64_MIN,
    Converters,
    dims,
    dtype_np,
    in_int64,
    inp,
    out,
    rank_of,
    scalar,
    shape_of,
    unsupported,
)

if TYPE_CHECKING:
    from trtimport.export.graph import GraphWriter

CONVERTERS = Converters()
converts = CONVERTERS.converts


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
        fill = scalar(g, layer, 0, f"{layer.name}/fill")
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
