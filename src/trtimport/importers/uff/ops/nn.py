"""Convolution, transposed convolution, pooling, batch norm and LRN.

These ops carry ``inputs_orders``: which stored axis of the data is N, C and spatial (``N+C`` is
NHWC, ``NC+`` NCHW) and which axis of the kernel is K (outputs), C (inputs) and spatial (``+CK``
is TensorFlow's HWIO). The data is transposed to NCHW for the ONNX op and back afterwards, so
every tensor keeps the layout TensorFlow gave it; kernels are rearranged once, in numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trtimport.importers.uff.context import Converter, NotConvertible
from trtimport.importers.uff.model import UffNode
from trtimport.importers.uff.ops.registry import handles


@dataclass
class Layout:
    """A data input moved to canonical (NC + spatial) order."""

    tensor: str
    #: ``perm[i]`` = canonical axis stored at axis ``i`` of the original tensor.
    perm: list[int]
    #: The canonical shape (None for unknown dimensions), if known.
    dims: tuple[int | None, ...] | None

    @property
    def spatial(self) -> int:
        """The number of spatial axes."""
        return len(self.perm) - 2


def to_canonical(cx: Converter, node: UffNode, index: int = 0) -> Layout:
    """Input ``index`` of ``node`` transposed to canonical order, as its orders field says."""
    source = cx.tensor(node.inputs[index])
    rank = cx.rank(source)
    orders = node.fields.get("inputs_orders")
    perm = cx.permutation(orders, index, rank, node) if orders else list(range(rank))
    to_canon = [int(a) for a in np.argsort(perm)]
    dims = cx.dims(source)
    canon_dims = tuple(dims[a] for a in to_canon) if dims is not None else None
    return Layout(cx.transpose(source, to_canon, f"{node.name}/nchw"), perm, canon_dims)


def from_canonical(cx: Converter, layout: Layout, tensor: str, out: str) -> None:
    """Write ``tensor`` (canonical order) to ``out`` in the data input's stored order."""
    if layout.perm == list(range(len(layout.perm))):
        cx.emit("Identity", [tensor], out)
    else:
        cx.emit("Transpose", [tensor], out, perm=layout.perm)


def canonical_kernel(cx: Converter, node: UffNode, index: int = 1) -> np.ndarray:
    """The constant kernel of ``node`` in canonical (K, C, spatial…) order.

    A view of the stored kernel (TensorFlow's HWIO is strided in this order), not a copy: the
    ONNX writer writes a strided initializer in blocks of rows, so the rearranged kernel is
    never whole in memory."""
    kernel = cx.const_input(node, index, "kernel")
    orders = node.fields.get("inputs_orders")
    if orders:
        perm = cx.permutation(orders, index, kernel.ndim, node)
        kernel = kernel.transpose([int(a) for a in np.argsort(perm)])
    return kernel


#: Other spellings writers used for a field.
_ALIASES = {"dilation": "dilations", "strides": "stride", "kernel": "window_size"}


def _ints(node: UffNode, name: str, count: int, default: int) -> list[int]:
    value = node.fields.get(name, node.fields.get(_ALIASES.get(name, "")))
    if value is None or value == []:
        return [default] * count
    if isinstance(value, int):
        return [value] * count
    if len(value) != count:
        raise NotConvertible(f"has {len(value)} '{name}' values for {count} spatial axes")
    return [int(v) for v in value]


def same_pads(
    dims: tuple[int | None, ...] | None, kernel: list[int], strides: list[int], dilations: list[int]
) -> list[int] | None:
    """TensorFlow's SAME padding (the odd pixel at the end), or None if a size is unknown."""
    if dims is None or any(d is None for d in dims[2:]):
        return None
    begin, end = [], []
    for size, k, s, d in zip(dims[2:], kernel, strides, dilations, strict=True):
        assert size is not None
        out = -(-size // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
        begin.append(total // 2)
        end.append(total - total // 2)
    return begin + end


def _padding(
    node: UffNode, layout: Layout, kernel: list[int], strides: list[int], dilations: list[int]
) -> dict[str, object]:
    """ONNX padding attributes for the node's ``implicit_padding``/``padding`` fields."""
    spatial = layout.spatial
    implicit = node.fields.get("implicit_padding")
    if isinstance(implicit, str) and implicit.lower() == "same":
        pads = same_pads(layout.dims, kernel, strides, dilations)
        return {"auto_pad": "SAME_UPPER"} if pads is None else {"pads": pads}
    explicit = node.fields.get("padding")
    if not explicit:
        return {"pads": [0] * (2 * spatial)}
    if len(explicit) != spatial:
        raise NotConvertible(f"has {len(explicit)} padding values for {spatial} spatial axes")
    return {"pads": [int(p) for p in explicit] * 2}


@handles("Conv")
def convert_conv(cx: Converter, node: UffNode) -> None:
    layout = to_canonical(cx, node)
    kernel = canonical_kernel(cx, node)
    if kernel.ndim != len(layout.perm):
        raise NotConvertible(
            f"has a kernel of rank {kernel.ndim} for data of rank {len(layout.perm)}"
        )
    spatial = layout.spatial
    outputs, kernel_channels = kernel.shape[:2]
    in_channels = layout.dims[1] if layout.dims else None
    groups = node.fields.get("number_groups")
    if isinstance(groups, int) and groups > 1 and kernel_channels == groups:
        # TensorFlow's depthwise kernel: K is the channel multiplier, C the input channels;
        # output channel c * multiplier + m reads input channel c.
        weights = kernel.transpose(1, 0, *range(2, kernel.ndim)).reshape(
            kernel_channels * outputs, 1, *kernel.shape[2:]
        )
        group = kernel_channels
    else:
        weights = kernel
        group = groups if isinstance(groups, int) and groups > 1 else 1
        if group == 1 and in_channels and in_channels != kernel_channels:
            if in_channels % kernel_channels:
                raise NotConvertible(
                    f"has {in_channels} input channels but its kernel takes {kernel_channels}"
                )
            group = in_channels // kernel_channels
    strides = _ints(node, "strides", spatial, 1)
    dilations = _ints(node, "dilation", spatial, 1)
    ksize = list(weights.shape[2:])
    pads = _padding(node, layout, ksize, strides, dilations)
    inputs = [layout.tensor, cx.const(weights, f"{node.name}/W")]
    y = cx.step(
        "Conv",
        inputs,
        f"{node.name}/conv",
        strides=strides,
        dilations=dilations,
        group=group,
        kernel_shape=ksize,
        **pads,
    )
    from_canonical(cx, layout, y, node.name)


@handles("ConvTranspose")
def convert_conv_transpose(cx: Converter, node: UffNode) -> None:
    layout = to_canonical(cx, node)
    kernel = canonical_kernel(cx, node)  # (K = outputs, C = inputs, spatial…)
    spatial = layout.spatial
    strides = _ints(node, "strides", spatial, 1)
    dilations = _ints(node, "dilation", spatial, 1)
    ksize = list(kernel.shape[2:])
    if layout.dims is None or any(d is None for d in layout.dims[2:]):
        raise NotConvertible("needs the spatial size of its input")
    out_shape = cx.const_input(node, 2, "output shape").astype(np.int64).reshape(-1).tolist()
    out_canonical = [out_shape[a] for a in np.argsort(layout.perm)]
    implicit = str(node.fields.get("implicit_padding") or "").lower() == "same"
    explicit = _ints(node, "padding", spatial, 0)
    begin: list[int] = []
    end: list[int] = []
    extra: list[int] = []
    for size, out, k, s, d, p in zip(
        layout.dims[2:], out_canonical[2:], ksize, strides, dilations, explicit, strict=True
    ):
        assert size is not None
        span = (k - 1) * d + 1
        # SAME: the padding of the forward convolution from `out` back to `size`.
        total = max((size - 1) * s + span - out, 0) if implicit else 2 * p
        begin.append(total // 2)
        end.append(total - total // 2)
        extra.append(out - ((size - 1) * s + span - total))
    if any(e < 0 or e >= max(s, d) for e, s, d in zip(extra, strides, dilations, strict=True)):
        raise NotConvertible(f"asks for output size {out_canonical[2:]}, which no padding gives")
    weights = kernel.transpose(1, 0, *range(2, kernel.ndim))
    y = cx.step(
        "ConvTranspose",
        [layout.tensor, cx.const(weights, f"{node.name}/W")],
        f"{node.name}/deconv",
        strides=strides,
        dilations=dilations,
        kernel_shape=ksize,
        pads=begin + end,
        output_padding=extra if any(extra) else None,
    )
    from_canonical(cx, layout, y, node.name)


@handles("Pool")
def convert_pool(cx: Converter, node: UffNode) -> None:
    func = str(node.fields.get("func", "")).lower()
    if func not in ("max", "avg", "average", "mean"):
        raise NotConvertible(f"func '{func}' is not supported (max, avg)")
    layout = to_canonical(cx, node)
    spatial = layout.spatial
    kernel = _ints(node, "kernel", spatial, 1)
    strides = _ints(node, "strides", spatial, 1)
    x = layout.tensor
    explicit = node.fields.get("padding")
    implicit = str(node.fields.get("implicit_padding") or "").lower() == "same"
    attrs: dict[str, object] = {}
    if implicit:
        pads = same_pads(layout.dims, kernel, strides, [1] * spatial)
        attrs = {"auto_pad": "SAME_UPPER"} if pads is None else {"pads": pads}
    elif explicit:
        # A zero Pad that the converter folded into the pool: TensorFlow pooled the zeros.
        pads = [0, 0, *(int(p) for p in explicit)] * 2
        x = cx.step("Pad", [x, cx.ints(pads, f"{node.name}/pads")], f"{node.name}/pad")
    op = "MaxPool" if func == "max" else "AveragePool"
    if op == "AveragePool":
        attrs["count_include_pad"] = 0
    y = cx.step(op, [x], f"{node.name}/pool", kernel_shape=kernel, strides=strides, **attrs)
    from_canonical(cx, layout, y, node.name)


@handles("BatchNorm")
def convert_batch_norm(cx: Converter, node: UffNode) -> None:
    """Inference batch norm: inputs x, gamma, beta, mean, variance; field epsilon."""
    if len(node.inputs) != 5:
        raise NotConvertible(f"has {len(node.inputs)} inputs, not 5 (x, gamma, beta, mean, var)")
    epsilon = float(node.fields.get("epsilon", node.fields.get("eps", 1e-3)))
    batch_norm(cx, node, epsilon, channel_axis=None)


def batch_norm(cx: Converter, node: UffNode, epsilon: float, channel_axis: int | None) -> None:
    """Batch norm of input 0 along ``channel_axis`` (None: from the node's orders)."""
    x = cx.tensor(node.inputs[0])
    rank = cx.rank(x)
    if channel_axis is None:
        orders = node.fields.get("inputs_orders")
        perm = cx.permutation(orders, 0, rank, node) if orders else list(range(rank))
        channel_axis = perm.index(1)
    params = [cx.value(n) for n in node.inputs[1:5]]
    if any(p is None for p in params):
        moved = (
            [0, channel_axis, *(a for a in range(1, rank) if a != channel_axis)]
            if channel_axis
            else list(range(rank))
        )
        xc = cx.transpose(x, moved, f"{node.name}/nchw")
        y = cx.step(
            "BatchNormalization", [xc, *cx.inputs(node)[1:5]], f"{node.name}/bn", epsilon=epsilon
        )
        back = [int(a) for a in np.argsort(moved)]
        cx.emit("Transpose", [y], node.name, perm=back) if back != list(range(rank)) else cx.emit(
            "Identity", [y], node.name
        )
        return
    gamma, beta, mean, var = (np.asarray(p, dtype=np.float64).reshape(-1) for p in params)  # type: ignore[arg-type]
    scale = gamma / np.sqrt(var + epsilon)
    shift = beta - mean * scale
    tail = [1] * (rank - 1 - channel_axis)
    scale_t = cx.const(scale.astype(np.float32).reshape(-1, *tail), f"{node.name}/scale")
    shift_t = cx.const(shift.astype(np.float32).reshape(-1, *tail), f"{node.name}/shift")
    scaled = cx.step("Mul", [x, scale_t], f"{node.name}/mul")
    cx.emit("Add", [scaled, shift_t], node.name)


@handles("LRN")
def convert_lrn(cx: Converter, node: UffNode) -> None:
    """TensorFlow's LRN: x / (k + alpha * sum of squares over 2r+1 channels) ** beta.

    TensorFlow's LRN always normalises the last axis; the converter writes the fixed order
    ``NC+`` for it whatever the data, so the order is not read."""
    x = cx.tensor(node.inputs[0])
    rank = cx.rank(x)
    moved = [0, rank - 1, *range(1, rank - 1)]
    radius = int(node.fields.get("window_size", 5))
    size = 2 * radius + 1
    y = cx.step(
        "LRN",
        [cx.transpose(x, moved, f"{node.name}/nchw")],
        f"{node.name}/lrn",
        size=size,
        alpha=float(node.fields.get("alpha", 1.0)) * size,
        beta=float(node.fields.get("beta", 0.5)),
        bias=float(node.fields.get("k", 1.0)),
    )
    cx.emit("Transpose", [y], node.name, perm=[int(a) for a in np.argsort(moved)])
