"""Shape inference with Caffe's own rules (where they differ from ONNX's).

Pure functions on integer tuples; converters call them to know their tops' shapes and to
choose ONNX attributes that reproduce Caffe exactly (explicit pads instead of ceil mode, …).
Problems raise :class:`ValueError` with a message the converter wraps with the layer's name.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

Shape = tuple[int, ...]


def canonical_axis(axis: int, rank: int) -> int:
    """Caffe's CanonicalAxisIndex: negative axes count from the end."""
    if not -rank <= axis < rank:
        raise ValueError(f"axis {axis} is out of range for a blob of rank {rank}")
    return axis + rank if axis < 0 else axis


def count(shape: Sequence[int], start: int = 0, end: int | None = None) -> int:
    """The number of elements of ``shape[start:end]``."""
    return int(math.prod(shape[start:end]))


def hole_dilation(hole: int, hole_h: int, hole_w: int, has_hw: bool) -> list[int]:
    """PSPNet's HoleConvolution: ``hole_h``/``hole_w`` when given, else ``hole`` on both axes.

    Its effective kernel is ``k + (k - 1)(hole - 1)``, which is ONNX's dilation.
    """
    dilation = [hole_h, hole_w] if has_hw else [hole, hole]
    if min(dilation) <= 0:
        raise ValueError(f"hole {dilation} must be positive")
    return dilation


def conv_output(size: int, kernel: int, stride: int, pad: int, dilation: int) -> int:
    """Convolution output size (Caffe floors, as ONNX does)."""
    extent = dilation * (kernel - 1) + 1
    out = (size + 2 * pad - extent) // stride + 1
    if out <= 0:
        raise ValueError(
            f"kernel extent {extent} with pad {pad} does not fit an input of size {size}"
        )
    return out


def deconv_output(size: int, kernel: int, stride: int, pad: int, dilation: int) -> int:
    """Deconvolution output size."""
    out = stride * (size - 1) + dilation * (kernel - 1) + 1 - 2 * pad
    if out <= 0:
        raise ValueError(f"deconvolution of an input of size {size} gives size {out}")
    return out


def pool_output(
    size: int, kernel: int, stride: int, pad: int, *, ceil: bool = True, clip: bool | None = None
) -> int:
    """Pooling output size by Caffe's rule: ceil mode, then drop a window starting in the pad.

    Caffe rounds up, and when padding is used (on either axis: ``clip``, which defaults to
    ``pad > 0``) removes the last window if it would start at or beyond ``size + pad`` (it would
    cover only padding).
    """
    if pad >= kernel:
        raise ValueError(f"pad {pad} must be smaller than the kernel {kernel}")
    span = size + 2 * pad - kernel
    out = (-(-span // stride) if ceil else span // stride) + 1
    if (pad > 0 if clip is None else clip) and (out - 1) * stride >= size + pad:
        out -= 1
    if out <= 0:
        raise ValueError(f"a {kernel} window does not fit an input of size {size}")
    return out


def pool_end_pad(size: int, kernel: int, stride: int, pad: int, out: int) -> int:
    """The trailing pad that makes floor-mode pooling produce ``out`` windows."""
    return max((out - 1) * stride + kernel - size - pad, 0)


def pool_end_pad_any_size(kernel: int, stride: int, pad: int, *, ceil: bool, clip: bool) -> int:
    """The trailing pad with which floor-mode pooling gives Caffe's output size at *every* size.

    Floor mode with trailing pad ``e`` keeps the windows starting at ``t`` (a multiple of the
    stride) with ``t + kernel <= size + pad + e``. Caffe's ceil rounding keeps
    ``t <= size + 2*pad - kernel + stride - 1``, and its clip (``clip``: padding on either axis)
    ``t <= size + pad - 1``; ``e = min(pad + stride - 1, kernel - 1)`` states both bounds at
    once, and never more than ``kernel - 1``, so every window touches the input. Floor rounding
    never reaches the clip: ``e = pad``. Unclipped ceil rounding with a stride above the kernel
    keeps windows wholly outside the input at some sizes, which no constant pad reproduces.
    """
    if not ceil:
        return pad
    if not clip and stride > kernel:
        raise ValueError(
            f"with stride {stride} larger than kernel {kernel} and no padding, Caffe's ceil "
            "rounding adds a window wholly outside the input at some sizes"
        )
    return min(pad + stride - 1, kernel - 1)


def ave_pool_divisors(size: int, kernel: int, stride: int, pad: int, out: int) -> list[float]:
    """Per output index: Caffe's AVE divisor (counts pad up to size+pad) / in-image count."""
    ratios = []
    for o in range(out):
        start = o * stride - pad
        end = min(start + kernel, size + pad)
        caffe_count = end - start
        valid = min(end, size) - max(start, 0)
        ratios.append(valid / caffe_count if valid > 0 else 0.0)
    return ratios


def reshape_output(bottom: Shape, dims: Sequence[int], axis: int, num_axes: int) -> Shape:
    """Caffe Reshape: replace ``bottom[axis:axis+num_axes]`` by ``dims`` (0 copies, -1 infers)."""
    rank = len(bottom)
    start = axis + rank + 1 if axis < 0 else axis
    if not 0 <= start <= rank:
        raise ValueError(f"axis {axis} is out of range for a blob of rank {rank}")
    end = rank if num_axes == -1 else start + num_axes
    if num_axes < -1 or end > rank:
        raise ValueError(f"num_axes {num_axes} from axis {axis} exceeds rank {rank}")
    out: list[int] = []
    infer = -1
    for i, d in enumerate(dims):
        if d == 0:
            if start + i >= rank:
                raise ValueError(f"dim {i} is 0 (copy) but the bottom has no axis {start + i}")
            out.append(bottom[start + i])
        elif d == -1:
            if infer >= 0:
                raise ValueError("more than one dimension is -1")
            infer = i
            out.append(1)
        elif d > 0:
            out.append(d)
        else:
            raise ValueError(f"dimension {d} is invalid (use -1 to infer, 0 to copy)")
    full = list(bottom[:start]) + out + list(bottom[end:])
    total = count(bottom)
    if infer >= 0:
        known = count(full)
        if known == 0 or total % known:
            raise ValueError(f"cannot infer -1: {total} elements do not divide by {known}")
        full[start + infer] = total // known
    if count(full) != total:
        raise ValueError(f"{list(bottom)} ({total} elements) cannot become {full}")
    return tuple(full)


def flatten_output(bottom: Shape, axis: int, end_axis: int) -> Shape:
    """Caffe Flatten: merge axes ``axis..end_axis`` (inclusive) into one."""
    rank = len(bottom)
    start = canonical_axis(axis, rank)
    end = canonical_axis(end_axis, rank)
    if end < start:
        raise ValueError(f"end_axis {end_axis} is before axis {axis}")
    return (*bottom[:start], count(bottom, start, end + 1), *bottom[end + 1 :])


def slice_sizes(extent: int, points: Sequence[int], tops: int) -> list[int]:
    """Sizes of the pieces of a Slice: at ``points`` or, without points, equal parts."""
    if points:
        if len(points) != tops - 1:
            raise ValueError(f"{len(points)} slice_point(s) for {tops} tops (need {tops - 1})")
        bounds = [0, *points, extent]
        sizes = [b - a for a, b in itertools.pairwise(bounds)]
        if any(s <= 0 for s in sizes):
            raise ValueError(f"slice points {list(points)} are not increasing within {extent}")
        return sizes
    if extent % tops:
        raise ValueError(f"an axis of size {extent} cannot be split into {tops} equal parts")
    return [extent // tops] * tops


def crop_offsets(bottom: Shape, reference: Shape, axis: int, offsets: Sequence[int]) -> list[int]:
    """Caffe Crop: one offset per axis from ``axis`` (a single offset applies to all)."""
    rank = len(bottom)
    start = canonical_axis(axis, rank)
    n = rank - start
    if len(offsets) not in (0, 1, n):
        raise ValueError(f"{len(offsets)} offsets for {n} cropped axes (give 0, 1 or {n})")
    full = [0] * start + [
        0 if not offsets else offsets[0] if len(offsets) == 1 else offsets[i] for i in range(n)
    ]
    for i in range(start, rank):
        if full[i] + reference[i] > bottom[i]:
            raise ValueError(
                f"axis {i}: offset {full[i]} + size {reference[i]} exceeds the bottom's {bottom[i]}"
            )
    return full


def broadcast_shape(param: Shape, rank: int, axis: int) -> Shape:
    """Shape that aligns ``param`` with axes ``axis…`` of a rank-``rank`` blob (trailing 1s)."""
    return (*param, *([1] * (rank - axis - len(param))))
