"""SegNet/ENet max-unpooling without MaxPool indices: against numpy transcriptions of Caffe's
PoolingLayer (MAX with mask) and SegNet's UpsampleLayer, ties included, and built with TensorRT."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from caffe_harness import layer, net_text, rng, run

import trtimport
from trtimport.importers.caffe.convert import caffe_to_onnx
from trtimport.importers.caffe.parse import load_caffe


def caffe_max_pool_with_mask(x, k):  # type: ignore[no-untyped-def]
    """PoolingLayer::Forward_cpu, MAX, kernel = stride = k, ceil sizes: replace on a strictly
    greater value, so the first maximum in row-major order wins."""
    n, c, h, w = x.shape
    oh, ow = -(-h // k), -(-w // k)
    top = np.full((n, c, oh, ow), -np.inf, np.float32)
    mask = np.full((n, c, oh, ow), -1.0, np.float32)
    for i in range(oh):
        for j in range(ow):
            for r in range(i * k, min(i * k + k, h)):
                for s in range(j * k, min(j * k + k, w)):
                    better = x[:, :, r, s] > top[:, :, i, j]
                    top[:, :, i, j] = np.where(better, x[:, :, r, s], top[:, :, i, j])
                    mask[:, :, i, j] = np.where(better, r * w + s, mask[:, :, i, j])
    return top, mask


def segnet_upsample(values, mask, h_out, w_out):  # type: ignore[no-untyped-def]
    """UpsampleLayer::Forward_cpu (SegNet): top[mask[i]] = bottom[i], zeros elsewhere."""
    n, c = values.shape[:2]
    top = np.zeros((n, c, h_out * w_out), np.float32)
    flat_v, flat_m = values.reshape(n, c, -1), mask.reshape(n, c, -1).astype(int)
    for i in range(flat_v.shape[2]):
        np.put_along_axis(top, flat_m[:, :, i : i + 1], flat_v[:, :, i : i + 1], axis=2)
    return top.reshape(n, c, h_out, w_out)


SEGNET = (
    layer(
        "Pooling",
        "pooling_param { pool: MAX kernel_size: 2 stride: 2 }",
        ("x",),
        ("pool", "mask"),
        name="pool",
    )
    + layer("Scale", "scale_param { bias_term: false }", ("pool",), ("scaled",), name="scale")
    + layer(
        "Upsample",
        "upsample_param { scale: 2 upsample_h: 7 upsample_w: 9 }",
        ("scaled", "mask"),
        ("up",),
        name="up",
    )
)


def test_tiling_unpooling_matches_caffe_with_ties(tmp_path: Path) -> None:
    # Small integers: many windows hold equal maxima; 7 x 9 leaves partial ceil windows.
    x = rng(95).integers(-2, 3, (2, 3, 7, 9)).astype(np.float32)
    gains = rng(96).uniform(0.5, 1.5, 3).astype(np.float32)
    out = run(
        tmp_path,
        net_text(SEGNET, {"x": x.shape}),
        {"x": x},
        {"scale": [gains]},
        outputs=["pool", "mask", "up"],
    )
    pooled, mask = caffe_max_pool_with_mask(x, 2)
    assert np.array_equal(out["pool"], pooled) and np.array_equal(out["mask"], mask)
    expected = segnet_upsample(pooled * gains[None, :, None, None], mask, 7, 9)
    assert np.array_equal(out["up"], expected)
    ops = {n.op_type for n in onnx.load(str(tmp_path / "net.onnx")).graph.node}
    assert "ScatterElements" not in ops


def test_tiling_unpooling_builds_with_tensorrt(tmp_path: Path) -> None:
    prototxt = tmp_path / "segnet.prototxt"
    prototxt.write_text(net_text(SEGNET, {"x": (1, 3, 7, 9)}))
    model = load_caffe(prototxt, None)
    model.weights = {"scale": [np.ones(3, np.float32)]}
    conversion = caffe_to_onnx(model, tmp_path / "segnet.onnx")
    result = trtimport.convert(
        conversion.path,
        tmp_path / "segnet.engine",
        build_options=trtimport.BuildOptions(progress=False),
    )
    assert result.engine_bytes


@pytest.mark.parametrize("params", ["kernel_size: 3 stride: 2", "kernel_size: 2 stride: 2 pad: 1"])
def test_overlapping_or_padded_windows_keep_the_indices_path(tmp_path: Path, params: str) -> None:
    text = net_text(
        layer("Pooling", f"pooling_param {{ pool: MAX {params} }}", ("x",), ("p", "m"), name="p")
        + layer("Upsample", "upsample_param { scale: 2 }", ("p", "m"), ("u",), name="u"),
        {"x": (1, 2, 8, 8)},
    )
    x = rng(97).standard_normal((1, 2, 8, 8))
    run(tmp_path, text, {"x": x}, outputs=["u"])
    ops = {n.op_type for n in onnx.load(str(tmp_path / "net.onnx")).graph.node}
    assert "ScatterElements" in ops  # ONNX Runtime only; the build error says so


def test_engine_build_of_overlapping_unpooling_says_why(tmp_path: Path) -> None:
    from trtimport.errors import ModelParseError
    from trtimport.importers.caffe.make_weights import make_caffe_weights

    prototxt = tmp_path / "ov.prototxt"
    prototxt.write_text(
        net_text(
            layer(
                "Pooling",
                "pooling_param { pool: MAX kernel_size: 3 stride: 2 }",
                ("x",),
                ("p", "m"),
                name="p",
            )
            + layer("Upsample", "upsample_param { scale: 2 }", ("p", "m"), ("u",), name="u"),
            {"x": (1, 2, 8, 8)},
        )
    )
    weights = make_caffe_weights(prototxt, tmp_path / "ov.caffemodel").path
    with pytest.raises(ModelParseError, match=r"(?s)MaxPool.*windows that tile the input"):
        trtimport.convert(
            prototxt,
            tmp_path / "ov.engine",
            import_options=trtimport.ImportOptions(weights=weights),
            build_options=trtimport.BuildOptions(progress=False),
        )
    assert not (tmp_path / "ov.engine").exists()
