"""Convolution, pooling, LRN, scale, normalization, grid sampling and resize."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from trtimport.export.layers.common import (
    Converters,
    axes_of,
    dims,
    dtype_np,
    in_int64,
    inp,
    out,
    rank_of,
    shape_of,
    unsupported,
    weights_array,
)
from trtimport.export.layers.reduce import reduce_node

if TYPE_CHECKING:
    from trtimport.export.graph import GraphWriter

CONVERTERS = Converters()
converts = CONVERTERS.converts


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
