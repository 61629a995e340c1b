"""Emission helpers shared by several layer families (opset-dependent spellings)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from trtimport.importers.caffe import shapes
from trtimport.importers.caffe.registry import LayerContext

T = TypeVar("T")


def checked(ctx: LayerContext, fn: Callable[..., T], *args: object) -> T:
    """Call a :mod:`shapes` rule; its ValueError becomes a ShapeError naming the layer."""
    try:
        return fn(*args)
    except ValueError as err:
        raise ctx.shape_error(str(err)) from err


def axis_index(ctx: LayerContext, axis: int, rank: int | None = None) -> int:
    """Caffe's canonical axis for bottom 0 (or a blob of ``rank``)."""
    rank = len(ctx.input_shapes[0]) if rank is None else rank
    return checked(ctx, shapes.canonical_axis, axis, rank)


def reduce(
    ctx: LayerContext,
    op: str,
    x: str,
    axes: Sequence[int],
    *,
    keepdims: bool,
    out: str | None = None,
) -> str:
    """An ONNX Reduce* node; ``axes`` is an attribute before opset 18 (13 for ReduceSum)."""
    axes_as_input = ctx.opset >= (13 if op == "ReduceSum" else 18)
    if axes_as_input:
        return ctx.op(op, x, ctx.ints(list(axes), "axes"), out=out, keepdims=int(keepdims))
    return ctx.op(op, x, out=out, axes=list(axes), keepdims=int(keepdims))


def unsqueeze_trailing(ctx: LayerContext, x: str, rank: int, trailing: int) -> str:
    """Append ``trailing`` size-1 axes to a rank-``rank`` tensor (for Caffe's axis broadcasting)."""
    if trailing <= 0:
        return x
    return ctx.op("Unsqueeze", x, ctx.ints(list(range(rank, rank + trailing)), "axes"))


def dims_of(ctx: LayerContext, x: str, start: int, end: int) -> str:
    """Dimensions ``start``..``end`` (exclusive) of ``x``, read at run time (int64, 1-D)."""
    return ctx.op(
        "Slice",
        ctx.op("Shape", x),
        ctx.ints([start], "dims_start"),
        ctx.ints([end], "dims_end"),
        ctx.ints([0], "axis0"),
    )


def shape_from(ctx: LayerContext, x: str, leading: int, dims: Sequence[int] | str) -> str:
    """A shape tensor: the first ``leading`` dims of ``x`` (read at run time, so the batch
    dimension stays free), then ``dims`` (values, or a tensor computed in the graph)."""
    tail = dims if isinstance(dims, str) else ctx.ints(list(dims), "dims")
    return ctx.op("Concat", dims_of(ctx, x, 0, leading), tail, axis=0)


def pool_geometry(p: Any) -> tuple[list[int], list[int], list[int]]:
    """Kernel, stride and pad (H, W) of a PoolingParameter."""
    if p.HasField("kernel_h") or p.HasField("kernel_w"):
        kernel = [p.kernel_h, p.kernel_w]
    else:
        kernel = [p.kernel_size, p.kernel_size]
    if p.HasField("stride_h") or p.HasField("stride_w"):
        stride = [p.stride_h or 1, p.stride_w or 1]
    else:
        stride = [p.stride, p.stride]
    pad = [p.pad_h, p.pad_w] if p.HasField("pad_h") or p.HasField("pad_w") else [p.pad, p.pad]
    return [int(k) for k in kernel], [int(s) for s in stride], [int(v) for v in pad]


def intel_engine(ctx: LayerContext, param_engine: str) -> str:
    """The engine Intel Caffe picks for this layer: ``CAFFE``, ``MKLDNN``, ``MKL2017`` or ``""``.

    ``param_engine`` is the name of the layer parameter's own ``engine`` enum value, which wins
    unless it is ``DEFAULT``. Otherwise the layer's ``engine`` string applies, replaced by the
    net's when empty or when the two name MKL2017 and MKLDNN (Intel's ``Net::Init``); a
    sub-engine list (``"MKLDNN:CPU"``) counts by its first name. ``""``: none is named.
    """
    if param_engine != "DEFAULT":
        return param_engine
    layer_engine, net_engine = str(ctx.layer.engine), str(ctx.model.net.engine)
    if net_engine and (not layer_engine or {layer_engine, net_engine} == {"MKL2017", "MKLDNN"}):
        layer_engine = net_engine
    return layer_engine.split(":")[0]
