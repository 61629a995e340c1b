"""One model saved as SavedModel, frozen graph, Keras (.keras, .h5) and TFLite imports the same
way without flags: a dynamic batch becomes 1 (with a note), nothing else is asked for."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from trtimport import ImportOptions, import_model

from .tf_models import FORMATS, INPUT_SHAPES, REQUIRES_TF, SavedFiles

pytestmark = [pytest.mark.tf, REQUIRES_TF]


def test_every_format_imports_the_same_without_flags(
    tf_saved: Callable[[str], SavedFiles],
) -> None:
    saved = tf_saved("sequential")
    shapes = {}
    for fmt in FORMATS:
        with import_model(saved.paths[fmt], options=ImportOptions()) as imported:
            (tensor,) = imported.inputs
            shapes[fmt] = tensor.shape
            if fmt != "tflite":
                # TFLite files carry a fixed batch of 1; every other format leaves it dynamic.
                assert imported.context.default_shapes == {tensor.name: tensor.shape}, fmt
                assert any("dynamic batch set to 1" in n for n in imported.notes), fmt
    assert set(shapes.values()) == {(1, *INPUT_SHAPES["sequential"])}, shapes
