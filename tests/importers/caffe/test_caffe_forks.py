"""Fork fields with an effect at inference, against numpy transcriptions of each fork's C++ and,
where OpenCV's caffe.proto has the field, against OpenCV 4.14 too."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest
from caffe_harness import close, layer, net_text, rng, run
from test_layers_conv import conv_ref
from test_layers_pool import caffe_pool

from trtimport.importers.caffe.convert import caffe_to_onnx
from trtimport.importers.caffe.make_weights import make_caffe_weights
from trtimport.importers.caffe.parse import load_caffe

X4 = (1, 3, 9, 11)


def _against_opencv(tmp_path: Path, text: str, x: np.ndarray, top: str) -> np.ndarray:
    """Run the net with random weights on ONNX Runtime and OpenCV; check they agree."""
    prototxt = tmp_path / "fork.prototxt"
    prototxt.write_text(text)
    weights = make_caffe_weights(prototxt, tmp_path / "fork.caffemodel", seed=4).path
    conversion = caffe_to_onnx(load_caffe(prototxt, weights), tmp_path / "fork.onnx")
    session = ort.InferenceSession(str(conversion.path), providers=["CPUExecutionProvider"])
    (ours,) = session.run([top], {"x": x})
    net = cv2.dnn.readNetFromCaffe(str(prototxt), str(weights))
    net.setInput(x)
    close(ours, net.forward("L"))  # OpenCV names outputs by layer
    return np.asarray(ours)


@pytest.mark.parametrize("size", [7, 8])
def test_ceil_mode_false_rounds_down(tmp_path: Path, size: int) -> None:
    """OpenCV's caffe.proto / BVLC PR 3057: ceil_mode: false gives floor((H + 2p - k) / s) + 1."""
    params = "pooling_param { pool: MAX kernel_size: 3 stride: 2 ceil_mode: false }"
    text = net_text(layer("Pooling", params), {"x": (1, 2, size, size)})
    x = rng(71).standard_normal((1, 2, size, size)).astype(np.float32)
    ours = _against_opencv(tmp_path, text, x, "y")
    close(ours, caffe_pool(x, (3, 3), (2, 2), (0, 0), "MAX", ceil=False))
    assert ours.shape[-1] == (size - 3) // 2 + 1


def test_ceil_mode_true_is_caffe_default(tmp_path: Path) -> None:
    params = "pooling_param { pool: AVE kernel_size: 3 stride: 2 ceil_mode: true }"
    x = rng(72).standard_normal((1, 2, 8, 8))
    out = run(tmp_path, net_text(layer("Pooling", params), {"x": x.shape}), {"x": x})
    close(out["y"], caffe_pool(x, (3, 3), (2, 2), (0, 0), "AVE", ceil=True))


def test_dropout_scale_train_false_scales_at_test_time(tmp_path: Path) -> None:
    """caffe-fast-rcnn DropoutLayer::Forward_cpu, TEST: copy, then scale by 1/scale_ = 1 - ratio."""
    params = "dropout_param { dropout_ratio: 0.3 scale_train: false }"
    text = net_text(layer("Dropout", params), {"x": (1, 3, 4, 4)})
    x = rng(73).standard_normal((1, 3, 4, 4)).astype(np.float32)
    ours = _against_opencv(tmp_path, text, x, "y")
    close(ours, x * (1.0 - 0.3))


def test_dropout_scale_train_true_is_the_identity(tmp_path: Path) -> None:
    params = "dropout_param { dropout_ratio: 0.3 scale_train: true }"
    x = rng(74).standard_normal((1, 3, 4, 4))
    out = run(tmp_path, net_text(layer("Dropout", params), {"x": x.shape}), {"x": x})
    close(out["y"], x)


def test_nvcaffe_batch_norm_scale_bias(tmp_path: Path) -> None:
    """NVCaffe BatchNorm: (x - mean/f) / sqrt(var/f + eps) * blob3 + blob4."""
    params = "batch_norm_param { eps: 0.001 scale_bias: true }"
    text = net_text(layer("BatchNorm", params), {"x": (1, 3, 4, 4)})
    x = rng(75).standard_normal((1, 3, 4, 4)).astype(np.float32)
    ours = _against_opencv(tmp_path, text, x, "y")
    mean, var, factor, gamma, beta = load_caffe(
        tmp_path / "fork.prototxt", tmp_path / "fork.caffemodel"
    ).weights["L"]
    f = 1.0 / factor[0]
    c = (slice(None), None, None)
    expected = (x - mean[c] * f) / np.sqrt(var[c] * f + 0.001) * gamma[c] + beta[c]
    close(ours, expected)


@pytest.mark.parametrize(
    ("params", "dilation"),
    [("hole: 2 pad: 2", (2, 2)), ("hole_h: 3 hole_w: 1 pad_h: 3 pad_w: 1", (3, 1))],
)
def test_pspnet_hole_convolution_is_a_dilated_convolution(
    tmp_path: Path, params: str, dilation: tuple[int, int]
) -> None:
    """PSPNet's HoleConvolutionLayer: effective kernel k + (k - 1)(hole - 1), im2col with holes."""
    conv = f"convolution_param {{ num_output: 4 kernel_size: 3 {params} }}"
    x = rng(76).standard_normal((1, 3, 9, 11))
    w, b = rng(77).standard_normal((4, 3, 3, 3)), rng(78).standard_normal(4)
    text = net_text(layer("HoleConvolution", conv), {"x": x.shape})
    out = run(tmp_path, text, {"x": x}, {"L": [w, b]})
    pad = (dilation[0], dilation[1])
    close(out["y"], conv_ref(x, w, b, (1, 1), pad, dilation, 1))


@pytest.mark.parametrize(
    "params",
    [
        "num_output: 4 kernel_size: 3",  # the fork's CHECK: no hole, use Convolution
        "num_output: 4 kernel_size: 3 hole: 2 hole_h: 2 hole_w: 2",
        "num_output: 4 kernel_size: 3 dilation: 2 hole: 2",
    ],
)
def test_hole_convolution_without_one_hole_setting_is_a_shape_error(
    tmp_path: Path, params: str
) -> None:
    from trtimport.errors import ShapeError

    text = net_text(layer("HoleConvolution", f"convolution_param {{ {params} }}"), {"x": X4})
    with pytest.raises(ShapeError, match=r"'L'.*HoleConvolution"):
        run(tmp_path, text, {"x": np.zeros(X4)}, {"L": [np.ones((4, 3, 3, 3)), np.zeros(4)]})


@pytest.mark.parametrize(
    ("params", "dilation"), [("hole: 12 pad: 12", (12, 12)), ("hole_h: 2 hole_w: 3", (2, 3))]
)
def test_deeplab_v1_hole_on_a_convolution_is_a_dilated_convolution(
    tmp_path: Path, params: str, dilation: tuple[int, int]
) -> None:
    """DeepLab v1's ConvolutionLayer: effective kernel k + (k - 1)(hole - 1), im2col with
    holes (DeepLab-LargeFOV's fc6 has hole: 12, pad: 12)."""
    x = rng(84).standard_normal((1, 3, 30, 29))
    w, b = rng(85).standard_normal((4, 3, 3, 3)), rng(86).standard_normal(4)
    conv = f"convolution_param {{ num_output: 4 kernel_size: 3 {params} }}"
    out = run(
        tmp_path, net_text(layer("Convolution", conv), {"x": x.shape}), {"x": x}, {"L": [w, b]}
    )
    pad = (dilation[0], dilation[1]) if "pad" in params else (0, 0)
    close(out["y"], conv_ref(x, w, b, (1, 1), pad, dilation, 1))


def test_hole_on_other_layers_or_with_dilation_is_refused(tmp_path: Path) -> None:
    from trtimport.errors import ShapeError, UnsupportedLayerError

    weights = {"L": [np.ones((3, 4, 3, 3)), np.zeros(4)]}
    deconv = layer("Deconvolution", "convolution_param { num_output: 4 kernel_size: 3 hole: 2 }")
    with pytest.raises(UnsupportedLayerError, match="DeepLab v1's Convolution and PSPNet"):
        run(tmp_path, net_text(deconv, {"x": X4}), {"x": np.zeros(X4)}, weights)
    both = layer(
        "Convolution", "convolution_param { num_output: 4 kernel_size: 3 hole: 2 dilation: 2 }"
    )
    with pytest.raises(ShapeError, match=r"hole .* or dilation, not both"):
        run(
            tmp_path,
            net_text(both, {"x": X4}),
            {"x": np.zeros(X4)},
            {"L": [np.ones((4, 3, 3, 3)), np.zeros(4)]},
        )


def test_pspnet_bn_fields_change_nothing_at_test_time(tmp_path: Path) -> None:
    """PSPNet's deploy BN (moving_average, decay; cuDNN engine at test time): the stored mean
    and variance with eps, scale and shift, as yjxiong's BN."""
    x = rng(79).standard_normal((2, 4, 5, 6))
    r = rng(80)
    gamma, beta = r.standard_normal((1, 4, 1, 1)), r.standard_normal((1, 4, 1, 1))
    mean, var = r.standard_normal((1, 4, 1, 1)), r.uniform(0.5, 2, (1, 4, 1, 1))
    fields = "moving_average: true decay: 0.05 var_eps: 1e-10 scale_filler { type: 'constant' }"
    text = net_text(layer("BN", f"bn_param {{ {fields} }}"), {"x": x.shape})
    out = run(tmp_path, text, {"x": x}, {"L": [gamma, beta, mean, var]})
    close(out["y"], gamma * (x - mean) / np.sqrt(var + 1e-5) + beta)
