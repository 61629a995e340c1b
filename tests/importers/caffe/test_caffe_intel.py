"""Intel Caffe's fields: the fused ReLU of its Convolution against numpy, and its engine choices
(no effect on the result) against OpenCV 4.14 running the same net without them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from caffe_harness import close, fork_and_opencv, layer, net_text, rng, run
from test_layers_conv import conv_ref

from trtimport.errors import UnsupportedLayerError


@pytest.mark.parametrize("slope", [0.0, 0.1])
def test_convolution_relu_fused(tmp_path: Path, slope: float) -> None:
    """Intel Caffe's MKLDNN convolution with relu: max(y, 0) + negative_slope * min(y, 0)."""
    x = rng(91).standard_normal((1, 3, 6, 6))
    w, b = rng(92).standard_normal((4, 3, 3, 3)), rng(93).standard_normal(4)
    params = (
        f"convolution_param {{ num_output: 4 kernel_size: 3 pad: 1 relu: true "
        f'negative_slope: {slope} engine: MKLDNN conv_algorithm: "winograd" }}'
    )
    out = run(
        tmp_path, net_text(layer("Convolution", params), {"x": x.shape}), {"x": x}, {"L": [w, b]}
    )["y"]
    y = conv_ref(x, w, b, (1, 1), (1, 1), (1, 1), 1)
    close(out, np.maximum(y, 0) + slope * np.minimum(y, 0))


def test_deconvolution_relu_is_refused(tmp_path: Path) -> None:
    params = "convolution_param { num_output: 2 kernel_size: 2 stride: 2 relu: true }"
    text = net_text(layer("Deconvolution", params), {"x": (1, 2, 3, 3)})
    with pytest.raises(UnsupportedLayerError, match="not Deconvolution"):
        run(tmp_path, text, {"x": np.zeros((1, 2, 3, 3))})


def test_average_pooling_without_pad_count_is_refused(tmp_path: Path) -> None:
    params = "pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 avg_include_pad: false }"
    text = net_text(layer("Pooling", params), {"x": (1, 2, 5, 5)})
    with pytest.raises(UnsupportedLayerError, match="avg_include_pad: false"):
        run(tmp_path, text, {"x": np.zeros((1, 2, 5, 5))})


INTEL_NET = """name: "intel"
engine: "MKLDNN"
bn_stats_batch_size: 0
input: "x"
input_shape { dim: 1 dim: 3 dim: 8 dim: 8 }
layer { name: "c1" type: "Convolution" bottom: "x" top: "c1" engine: "MKLDNN"
  convolution_param { num_output: 4 kernel_size: 3 pad: 1 engine: MKLDNN } }
layer { name: "r1" type: "ReLU" bottom: "c1" top: "c1" engine: "MKL2017"
  relu_param { engine: MKL2017 } }
layer { name: "c2" type: "Convolution" bottom: "c1" top: "c2"
  convolution_param { num_output: 4 kernel_size: 1 engine: MKL2017 } }
layer { name: "sum" type: "Eltwise" bottom: "c1" bottom: "c2" top: "sum"
  eltwise_param { operation: SUM engine: MKLDNN } }
layer { name: "cat" type: "Concat" bottom: "sum" bottom: "c2" top: "cat"
  concat_param { axis: 1 engine: MKLDNN } }
layer { name: "pool" type: "Pooling" bottom: "cat" top: "pool"
  pooling_param { pool: AVE kernel_size: 2 stride: 2 engine: MKLDNN avg_include_pad: true } }
layer { name: "fc" type: "InnerProduct" bottom: "pool" top: "fc"
  inner_product_param { num_output: 5 engine: MKLDNN } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" softmax_param { engine: CAFFE } }
"""

INTEL_ONLY = (
    'engine: "MKLDNN"\n',
    "bn_stats_batch_size: 0\n",
    ' engine: "MKLDNN"',
    ' engine: "MKL2017"',
    " engine: MKLDNN",
    " engine: MKL2017",
    " engine: CAFFE",
    " avg_include_pad: true",
)


def test_intel_engine_fields_change_nothing(tmp_path: Path) -> None:
    """The net with Intel's engine fields gives what OpenCV gives for it without them."""
    plain = INTEL_NET
    for field in INTEL_ONLY:
        plain = plain.replace(field, "")
    assert "engine" not in plain and "avg_include_pad" not in plain
    x = rng(94).standard_normal((1, 3, 8, 8))
    close(*fork_and_opencv(tmp_path, INTEL_NET, plain, x, "prob", seed=5))


def test_lrn_engine_changes_nothing(tmp_path: Path) -> None:
    x = rng(95).standard_normal((1, 6, 4, 4))
    plain = net_text(layer("LRN", "lrn_param { local_size: 3 alpha: 0.5 }"), {"x": x.shape})
    intel = plain.replace("alpha: 0.5", "alpha: 0.5 engine: MKL2017")
    assert intel != plain
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    close(run(tmp_path / "a", intel, {"x": x})["y"], run(tmp_path / "b", plain, {"x": x})["y"], 0)
