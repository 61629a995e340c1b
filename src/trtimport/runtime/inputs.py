"""Feeds for a runner: input files where given, seeded random data for the rest."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from trtimport.core.runner import TensorSpec
from trtimport.errors import ShapeError, UsageError
from trtimport.runtime.preprocess import ImageOptions, load_input


@dataclass
class Feeds:
    """Input arrays by name, where each came from, and notes for the user."""

    arrays: dict[str, np.ndarray]
    sources: dict[str, str]
    notes: list[str] = field(default_factory=list)


def concrete_shape(spec: TensorSpec, override: tuple[int, ...] | None = None) -> tuple[int, ...]:
    """The spec's shape with every dimension known, or a UsageError naming the input.

    A dynamic leading (batch) dimension alone becomes 1, as the import does
    (:mod:`trtimport.onnxtools.input_defaults`); the note on generated inputs shows the shape.
    """
    if override is not None:
        if len(override) != len(spec.shape):
            raise ShapeError(
                f"input '{spec.name}' has rank {len(spec.shape)} {list(spec.shape)}; the shape "
                f"given for it has rank {len(override)}"
            )
        return override
    dims = list(spec.shape)
    if dims and (dims[0] is None or dims[0] < 0):
        dims[0] = 1
    if any(d is None or d < 0 for d in dims):
        shown = "x".join("?" if d is None or d < 0 else str(d) for d in spec.shape)
        raise UsageError(
            f"input '{spec.name}' has dynamic shape {shown}: give a file with --input "
            f"{spec.name}=FILE or a shape with --input {spec.name}:1x…"
        )
    return tuple(int(d) for d in dims)  # type: ignore[arg-type]


def _check_size(spec: TensorSpec, shape: tuple[int, ...]) -> None:
    """Refuse a generated input larger than trtimport puts in memory (a typo in --input)."""
    from trtimport.core.input_files import max_array_bytes

    nbytes = int(np.prod(shape, dtype=object)) * np.dtype(spec.dtype).itemsize
    if nbytes > max_array_bytes():
        raise ShapeError(
            f"input '{spec.name}' of shape {'x'.join(map(str, shape))} would take {nbytes} "
            f"bytes, more than the {max_array_bytes()} trtimport generates "
            "(TRTIMPORT_MAX_ARRAY_BYTES); give a smaller shape with --input"
        )


def random_array(shape: tuple[int, ...], dtype: np.dtype, rng: np.random.Generator) -> np.ndarray:
    """Floats uniform in [0, 1), integers in [0, 8), booleans at random."""
    if dtype == np.bool_:
        return rng.integers(0, 2, size=shape).astype(np.bool_)
    if np.issubdtype(dtype, np.integer):
        return rng.integers(0, 8, size=shape).astype(dtype)
    return rng.random(size=shape, dtype=np.float64).astype(dtype)


def make_feeds(
    specs: list[TensorSpec],
    files: dict[str, Path],
    image_options: ImageOptions,
    *,
    seed: int = 0,
    shapes: dict[str, tuple[int, ...]] | None = None,
) -> Feeds:
    """Load the given input files and generate the missing inputs (seeded, reproducible)."""
    shapes = shapes or {}
    by_name = {s.name: s for s in specs}
    unknown = [n for n in files if n not in by_name]
    if unknown:
        raise UsageError(
            f"--input names {', '.join(map(repr, unknown))}, but the model's inputs are "
            f"{', '.join(by_name) or '(none)'}"
        )
    rng = np.random.default_rng(seed)
    feeds = Feeds({}, {})
    generated = []
    for spec in specs:
        path = files.get(spec.name)
        if path is not None:
            shape = shapes.get(spec.name, spec.shape)
            array = load_input(path, spec.name, image_options, shape)
            feeds.arrays[spec.name] = np.ascontiguousarray(array, dtype=spec.dtype)
            feeds.sources[spec.name] = str(path)
        else:
            shape = concrete_shape(spec, shapes.get(spec.name))
            _check_size(spec, shape)
            feeds.arrays[spec.name] = random_array(shape, spec.dtype, rng)
            feeds.sources[spec.name] = f"random (seed {seed})"
            generated.append(f"{spec.name} {'x'.join(map(str, shape)) or 'scalar'}")
    if generated:
        feeds.notes.append(
            f"generated random input(s) {', '.join(generated)} with seed {seed}; give real "
            "data with --input NAME=FILE"
        )
    return feeds
