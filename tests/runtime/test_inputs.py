"""Feeds: files where given, seeded random data otherwise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trtimport.core.options import ImageOptions
from trtimport.core.runner import TensorSpec
from trtimport.errors import ShapeError, UsageError
from trtimport.runtime.inputs import make_feeds

REPO = Path(__file__).resolve().parents[2]
DIGIT = REPO / "examples" / "mnist" / "digits" / "7.png"
SPECS = [
    TensorSpec("x", (1, 1, 28, 28), np.dtype("float32")),
    TensorSpec("ids", (1, 4), np.dtype("int64")),
]


def test_generated_inputs_are_seeded():
    a = make_feeds(SPECS, {}, ImageOptions(), seed=5)
    b = make_feeds(SPECS, {}, ImageOptions(), seed=5)
    c = make_feeds(SPECS, {}, ImageOptions(), seed=6)
    np.testing.assert_array_equal(a.arrays["x"], b.arrays["x"])
    assert not np.array_equal(a.arrays["x"], c.arrays["x"])
    assert a.arrays["ids"].dtype == np.int64 and a.arrays["x"].dtype == np.float32
    assert a.arrays["x"].min() >= 0 and a.arrays["x"].max() < 1
    assert "seed 5" in a.notes[0] and a.sources["x"] == "random (seed 5)"


def test_image_file_with_caffe_scale():
    cv2 = pytest.importorskip("cv2")
    feeds = make_feeds(SPECS[:1], {"x": DIGIT}, ImageOptions(scale=1 / 256))
    pixels = cv2.imread(str(DIGIT), cv2.IMREAD_GRAYSCALE).astype(np.float32)
    np.testing.assert_array_equal(feeds.arrays["x"][0, 0], pixels / 256)
    assert feeds.notes == [] and feeds.sources["x"] == str(DIGIT)


def test_dynamic_shape_needs_data_or_shape(tmp_path):
    spec = [TensorSpec("x", (None, 3), np.dtype("float32"))]
    # A dynamic batch alone becomes 1; any other dynamic dimension needs a shape.
    assert make_feeds(spec, {}, ImageOptions()).arrays["x"].shape == (1, 3)
    with pytest.raises(UsageError, match="--input y:1x"):
        make_feeds([TensorSpec("y", (None, -1), np.dtype("float32"))], {}, ImageOptions())
    assert make_feeds(spec, {}, ImageOptions(), shapes={"x": (2, 3)}).arrays["x"].shape == (2, 3)
    with pytest.raises(ShapeError, match="rank"):
        make_feeds(spec, {}, ImageOptions(), shapes={"x": (2, 3, 1)})
    np.save(tmp_path / "x.npy", np.ones((5, 3), np.float64))
    fed = make_feeds(spec, {"x": tmp_path / "x.npy"}, ImageOptions())
    assert fed.arrays["x"].shape == (5, 3) and fed.arrays["x"].dtype == np.float32


def test_unknown_input_name():
    with pytest.raises(UsageError, match="model's inputs are x, ids"):
        make_feeds(SPECS, {"data": DIGIT}, ImageOptions())
