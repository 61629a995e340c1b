"""Built-in Caffe layer converters, one module per layer family."""

from __future__ import annotations

from trtimport.importers.caffe.layers import (
    activation,
    conv,
    dense,
    detection,
    detection_output,
    math,
    norm,
    pool,
    proposal,
    shape,
    yolo,
    yolo_detection_output,
)
from trtimport.importers.caffe.registry import Converter

FAMILIES = (
    conv,
    pool,
    dense,
    norm,
    activation,
    shape,
    math,
    detection,
    detection_output,
    proposal,
    yolo,
    yolo_detection_output,
)


def builtin_converters() -> dict[str, Converter]:
    """Every built-in converter by layer type."""
    converters: dict[str, Converter] = {}
    for family in FAMILIES:
        converters.update(family.CONVERTERS)
    return converters
