"""Caffe input shapes are defaults: ``--input NAME:SHAPE`` replaces any of their dimensions.

Caffe reshapes a net at run time (OpenPose's deploy prototxt declares 1x3x1x1 and is always run
at the image's size), so the converter takes the given shape as the input's and infers every
layer from it — PriorBox, Interp and Crop included, since they are computed from the shapes they
receive.
"""

from __future__ import annotations

from collections.abc import Mapping

from trtimport.errors import ShapeError, UsageError
from trtimport.importers.caffe.parse import CaffeModel

Shape = tuple[int, ...]


def override_input_shapes(model: CaffeModel, shapes: Mapping[str, Shape]) -> list[str]:
    """Give the named Caffe inputs ``shapes`` (any dimension may change); notes saying so.

    A name that is not an input of the net is a :class:`UsageError` listing the inputs; a
    different rank or a dimension below 1 is a :class:`ShapeError`.
    """
    source = model.prototxt or model.caffemodel
    notes: list[str] = []
    for name, shape in shapes.items():
        current = model.input_shapes.get(name)
        if current is None:
            raise UsageError(
                f"{source}: --input names '{name}', but the net's inputs are "
                f"{', '.join(model.input_shapes) or '(none)'}"
            )
        shape = tuple(int(d) for d in shape)
        unknown = not current  # a data layer whose parameters imply no shape
        if (len(shape) != len(current) and not unknown) or min(shape, default=1) < 1:
            raise ShapeError(
                f"{source}: input '{name}' has rank {len(current)} {list(current)}; --input "
                f"gives {list(shape)} (same rank, every dimension at least 1)"
            )
        if shape != current:
            model.input_shapes[name] = shape
            said = "x".join(map(str, current)) if current else "no shape"
            notes.append(
                f"{source}: input '{name}' converted at {'x'.join(map(str, shape))} (the "
                f"prototxt says {said}); every layer's shape follows"
            )
    return notes
