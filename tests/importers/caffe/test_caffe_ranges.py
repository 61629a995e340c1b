"""--shapes ranges on non-batch dimensions of Caffe inputs are refused, naming the layer that
pins the size (the converted graph holds one spatial size)."""

from __future__ import annotations

from pathlib import Path

import pytest
from caffe_harness import layer, net_text

import trtimport
from trtimport import ImportOptions
from trtimport.core.options import ShapeRange
from trtimport.errors import ShapeError
from trtimport.importers.caffe.make_weights import make_caffe_weights
from trtimport.importers.caffe.ranges import varying_inputs

MNIST = Path(__file__).resolve().parents[3] / "examples" / "mnist"


def _profile(name: str, lo: tuple[int, ...], hi: tuple[int, ...]) -> ImportOptions:
    return ImportOptions(profiles=[{name: ShapeRange(lo, hi, hi)}])


def test_lenet_range_names_the_inner_product(tmp_path: Path) -> None:
    """LeNet's ip1 reads 800 values at 28x28 only: converting at MIN fails there."""
    with pytest.raises(ShapeError) as info:
        trtimport.convert(
            MNIST / "lenet.caffemodel",
            tmp_path / "lenet.engine",
            import_options=_profile("data", (1, 1, 20, 20), (1, 1, 28, 28)),
            build=False,
        )
    message = str(info.value)
    assert "input 'data' the sizes 1x1x20x20 to 1x1x28x28" in message
    assert "layer 'ip1' (InnerProduct" in message and "--input data:SHAPE" in message
    assert not (tmp_path / "lenet.engine").exists()


def test_pooling_rounding_pins_the_size(tmp_path: Path) -> None:
    """A ceil-rounded pooling window needs a trailing pad at 8x8 but not at 9x9."""
    text = net_text(
        layer("Convolution", "convolution_param { num_output: 2 kernel_size: 1 }", ("x",), ("c",))
        + layer(
            "Pooling",
            "pooling_param { pool: MAX kernel_size: 3 stride: 2 }",
            ("c",),
            ("p",),
            name="pool",
        ),
        {"x": (1, 3, 9, 9)},
    )
    prototxt = tmp_path / "pool.prototxt"
    prototxt.write_text(text)
    weights = make_caffe_weights(prototxt, tmp_path / "pool.caffemodel", seed=1).path
    with pytest.raises(ShapeError, match=r"layer 'pool' \(Pooling, .*pool.prototxt:4\)"):
        trtimport.convert(
            prototxt,
            tmp_path / "pool.engine",
            import_options=ImportOptions(
                weights=weights,
                profiles=[{"x": ShapeRange((1, 3, 8, 8), (1, 3, 9, 9), (1, 3, 9, 9))}],
            ),
            build=False,
        )


def test_batch_only_ranges_are_not_spatial() -> None:
    """A range in the first dimension alone is --batch's business (the backend's checks)."""
    inputs = {"data": (1, 3, 8, 8), "im_info": (1, 3)}
    batch = {"data": ShapeRange((1, 3, 8, 8), (2, 3, 8, 8), (4, 3, 8, 8))}
    spatial = {"data": ShapeRange((1, 3, 8, 8), (1, 3, 9, 9), (1, 3, 16, 16))}
    assert varying_inputs([batch], inputs) == {}
    assert varying_inputs([batch, spatial], inputs) == {"data": spatial}
