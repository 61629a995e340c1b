"""``--shapes`` ranges on Caffe inputs: one ONNX graph with symbolic dimensions, checked at each
MIN, OPT and MAX.

Caffe reshapes a net to its input at run time; the converter instead computes every layer's
shape when it converts (that is where Caffe's rules are checked: pooling rounding, Concat and
Eltwise agreement, InnerProduct's input length). A range is therefore converted at every shape
the profiles name, with the converters in dynamic mode (``LayerContext.dynamic``: sizes are read
in the graph with Shape/Slice rather than baked in), and the graphs compared layer by layer. If
every layer emitted the same nodes and constants at every size, that graph serves them all: it is
written with the varying input dimensions symbolic (``data_height``, ``data_width``). The first
layer whose nodes or constants differ (an InnerProduct after spatial axes, PriorBox, a Reshape to
explicit sizes) pins the size and is named in a :class:`ShapeError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from trtimport.core.options import Profile
from trtimport.errors import ShapeError

Shape = tuple[int, ...]
#: A symbolic, fixed or unknown dimension of a graph input or output.
Dim = int | str | None

#: Names of the dimensions of rank-4 and rank-5 blobs (Caffe's N x C x [D x] H x W).
_AXIS_NAMES = {
    4: ("batch", "channels", "height", "width"),
    5: ("batch", "channels", "depth", "height", "width"),
}


@dataclass
class LayerEmission:
    """What one layer's converter added to the graph: its nodes and its constants' values."""

    layer: str
    nodes: list[bytes]
    constants: list[np.ndarray]


def varying_inputs(profiles: Sequence[Profile], inputs: Mapping[str, Shape]) -> dict[str, Profile]:
    """Per Caffe input, the first profile whose shapes for it vary (or differ from the net's)."""
    found: dict[str, Profile] = {}
    for profile in profiles:
        for name, rng in profile.items():
            if name in inputs and len({tuple(rng.min), tuple(rng.opt), tuple(rng.max)}) > 1:
                found.setdefault(name, profile)
    return found


def needs_ranges(profiles: Sequence[Profile], inputs: Mapping[str, Shape]) -> bool:
    """Whether the profiles give any Caffe input a shape other than its own (a single other
    shape is converted as ``--input`` would; several make symbols)."""
    given = _shapes_by_input(profiles, inputs)
    return any(shapes != {tuple(inputs[name])} for name, shapes in given.items())


def _shapes_by_input(
    profiles: Sequence[Profile], inputs: Mapping[str, Shape]
) -> dict[str, set[Shape]]:
    found: dict[str, set[Shape]] = {}
    for profile in profiles:
        for name, rng in profile.items():
            if name in inputs:
                found.setdefault(name, set()).update(
                    tuple(int(d) for d in s) for s in (rng.min, rng.opt, rng.max)
                )
    return found


@dataclass(frozen=True)
class Point:
    """One set of input shapes to convert at: ``label`` says where it comes from."""

    label: str
    shapes: dict[str, Shape]


def range_points(profiles: Sequence[Profile], inputs: Mapping[str, Shape]) -> list[Point]:
    """The input shapes to convert at: the first profile's OPT first, then every MIN, OPT and
    MAX of every profile (each distinct set once). Inputs a profile leaves out keep ``inputs``."""
    points: list[Point] = []
    seen: set[tuple[tuple[str, Shape], ...]] = set()
    order = [("opt", 0)] + [(w, k) for k in range(len(profiles)) for w in ("min", "opt", "max")]
    for which, k in order:
        shapes = dict(inputs)
        for name, rng in profiles[k].items():
            if name in inputs:
                shapes[name] = tuple(int(d) for d in getattr(rng, which))
        key = tuple(sorted(shapes.items()))
        if key in seen:
            continue
        seen.add(key)
        where = which.upper() + (f" of profile {k + 1}" if len(profiles) > 1 else "")
        points.append(Point(where, shapes))
    return points


def dim_names(name: str, rank: int) -> list[str]:
    """Symbols for the dimensions of blob ``name``: ``data_batch``, ``data_height``, …"""
    axes = _AXIS_NAMES.get(rank) or ("batch", *(f"dim{i}" for i in range(1, rank)))
    return [f"{name}_{axis}" for axis in axes]


def merged_dims(name: str, shapes: Sequence[Shape]) -> list[Dim] | None:
    """A blob's dimensions over several conversions: fixed where they agree, else a symbol."""
    if len({len(s) for s in shapes}) != 1:
        return None
    symbols = dim_names(name, len(shapes[0]))
    return [
        dims[0] if len(set(dims)) == 1 else symbol
        for symbol, dims in zip(symbols, zip(*shapes, strict=True), strict=True)
    ]


def _same_constant(a: np.ndarray, b: np.ndarray) -> bool:
    return a is b or (a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b))


def first_difference(a: Sequence[LayerEmission], b: Sequence[LayerEmission]) -> str | None:
    """The first layer whose nodes or constants differ between two conversions, if any."""
    for x, y in zip(a, b, strict=False):
        if x.layer != y.layer or x.nodes != y.nodes:
            return x.layer
        if len(x.constants) != len(y.constants) or not all(
            _same_constant(p, q) for p, q in zip(x.constants, y.constants, strict=True)
        ):
            return x.layer
    if len(a) != len(b):
        return (a if len(a) > len(b) else b)[min(len(a), len(b))].layer
    return None


def range_error(
    source: object,
    profiles: Sequence[Profile],
    inputs: Mapping[str, Shape],
    reason: str,
    detail: str = "",
) -> ShapeError:
    """A :class:`ShapeError` for a range the net cannot take, with what to do instead (and
    ``detail``, the conversion's own error, on the lines after)."""
    varying = varying_inputs(profiles, inputs)
    name = next(iter(varying), next(iter(inputs), "data"))
    sizes = ""
    if name in varying:
        rng = varying[name][name]
        sizes = f" the sizes {'x'.join(map(str, rng.min))} to {'x'.join(map(str, rng.max))}"
    message = (
        f"{source}: --shapes gives input '{name}'{sizes}, but {reason}. Build one engine per "
        f"size with --input {name}:SHAPE (Caffe input shapes are defaults), or vary only the "
        "batch with --batch MIN/OPT/MAX"
    )
    return ShapeError(f"{message}\n{detail}" if detail else message)


def check_ranks(source: object, profiles: Sequence[Profile], inputs: Mapping[str, Shape]) -> None:
    """Every range of a Caffe input has the input's rank and dimensions of at least 1."""
    for profile in profiles:
        for name, rng in profile.items():
            current = inputs.get(name)
            if current is None:
                continue
            for bound in (rng.min, rng.opt, rng.max):
                if (current and len(bound) != len(current)) or min(bound, default=1) < 1:
                    raise ShapeError(
                        f"{source}: input '{name}' has rank {len(current)} {list(current)}; "
                        f"--shapes gives {list(bound)} (same rank, every dimension at least 1)"
                    )
