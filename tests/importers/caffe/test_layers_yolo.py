"""caffe-yolo (YOLOv2) Reorg and Region against numpy transcriptions of the ports' C++ loops, and
Reorg against OpenCV 4.14's darknet reorg (OpenCV's caffe.proto has no reorg_param)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from caffe_harness import build_prototxt, close, layer, net_text, rng, run

from trtimport.errors import ShapeError, UnsupportedLayerError


def port_reorg(x: np.ndarray, stride: int, reverse: bool) -> np.ndarray:
    """The ports' ``reorg_cpu(bottom, W, H, C, N, stride, forward=reverse, top)``, index by index.

    Loops over the bottom's (n, c, h, w); ``t_*`` is the view of C/s² x Hs x Ws. Without
    ``reverse`` it gathers (top[bottom_index] = bottom[top_index]), with it it scatters.
    """
    n, c, h, w = x.shape
    s = stride
    tc, th, tw = c // (s * s), h * s, w * s
    flat = x.reshape(-1)
    out = np.empty_like(flat)
    nn, cc, hh, ww = np.meshgrid(range(n), range(c), range(h), range(w), indexing="ij")
    bottom_index = ww + w * (hh + h * (cc + c * nn))
    c2, offset = cc % tc, cc // tc
    w2, h2 = ww * s + offset % s, hh * s + offset // s
    top_index = w2 + tw * (h2 + th * (c2 + tc * nn))
    if reverse:
        out[top_index.ravel()] = flat[bottom_index.ravel()]
        return out.reshape(n, tc, th, tw)
    out[bottom_index.ravel()] = flat[top_index.ravel()]
    return out.reshape(n, c * s * s, h // s, w // s)


def port_region(x: np.ndarray, classes: int, coords: int, num: int) -> np.ndarray:
    """The darknet-style port's RegionLayer::Forward_cpu with its entry_index arithmetic."""
    batch = x.shape[0]
    cells = x.shape[2] * x.shape[3]
    flat = x.reshape(batch, -1).astype(np.float64)
    top = flat.copy()
    per_anchor = cells * (coords + classes + 1)
    for b in range(batch):
        for a in range(num):
            start = a * per_anchor
            xy = slice(start, start + 2 * cells)
            top[b, xy] = 1 / (1 + np.exp(-flat[b, xy]))
            obj = start + coords * cells
            top[b, obj : obj + cells] = 1 / (1 + np.exp(-flat[b, obj : obj + cells]))
            first = start + (coords + 1) * cells
            scores = flat[b, first : first + classes * cells].reshape(classes, cells)
            e = np.exp(scores - scores.max(axis=0))
            top[b, first : first + classes * cells] = (e / e.sum(axis=0)).reshape(-1)
    return top.reshape(x.shape)


@pytest.mark.parametrize(("shape", "stride"), [((2, 8, 4, 6), 2), ((1, 18, 6, 3), 3)])
def test_reorg_follows_darknet_order(tmp_path: Path, shape: tuple[int, ...], stride: int) -> None:
    x = rng(81).standard_normal(shape)
    text = net_text(layer("Reorg", f"reorg_param {{ stride: {stride} }}"), {"x": shape})
    out = run(tmp_path, text, {"x": x})["y"]
    close(out, port_reorg(x, stride, reverse=False))
    # Not ONNX SpaceToDepth: the same blocks land in other channels.
    n, c, h, w = shape
    s = stride
    std = x.reshape(n, c, h // s, s, w // s, s).transpose(0, 3, 5, 1, 2, 4)
    assert not np.allclose(out, std.reshape(n, c * s * s, h // s, w // s))


def test_reorg_without_reorg_param_follows_caffe_yolo9000(tmp_path: Path) -> None:
    """choasup/caffe-yolo9000: stride 2 by default, and its Forward_cpu scatters (reorg_cpu with
    forward = 1, the ports' reverse order) into a top it labels Cs² x H/s x W/s."""
    x = rng(83).standard_normal((2, 8, 4, 6))
    out = run(tmp_path, net_text(layer("Reorg", ""), {"x": x.shape}), {"x": x})["y"]
    assert out.shape == (2, 32, 2, 3)
    close(out, port_reorg(x, 2, reverse=True).reshape(out.shape))
    assert not np.allclose(out, port_reorg(x, 2, reverse=False))


def test_reorg_reverse(tmp_path: Path) -> None:
    x = rng(82).standard_normal((1, 16, 3, 5))
    text = net_text(layer("Reorg", "reorg_param { stride: 2 reverse: true }"), {"x": x.shape})
    out = run(tmp_path, text, {"x": x})["y"]
    close(out, port_reorg(x, 2, reverse=True))
    assert out.shape == (1, 4, 6, 10)


def test_reorg_matches_opencv_darknet_reorg(tmp_path: Path) -> None:
    """OpenCV runs darknet's reorg (the ports copied its loop) through its darknet importer."""
    cfg = tmp_path / "reorg.cfg"
    cfg.write_text("[net]\nwidth=6\nheight=4\nchannels=8\nbatch=1\n\n[reorg]\nstride=2\n")
    x = rng(83).standard_normal((1, 8, 4, 6)).astype(np.float32)
    net = cv2.dnn.readNetFromDarknet(str(cfg))
    net.setInput(x)
    expected = net.forward()
    text = net_text(layer("Reorg", "reorg_param { stride: 2 }"), {"x": x.shape})
    close(run(tmp_path, text, {"x": x})["y"], expected)


@pytest.mark.parametrize(("classes", "coords", "num"), [(3, 4, 2), (2, 2, 1), (1, 5, 3)])
def test_region_logistic_and_class_softmax(
    tmp_path: Path, classes: int, coords: int, num: int
) -> None:
    channels = num * (coords + 1 + classes)
    x = 3 * rng(84).standard_normal((2, channels, 3, 4))
    params = f"region_param {{ classes: {classes} coords: {coords} num: {num} }}"
    out = run(tmp_path, net_text(layer("Region", params), {"x": x.shape}), {"x": x})["y"]
    close(out, port_region(x, classes, coords, num))


def test_region_channel_mismatch_names_the_numbers(tmp_path: Path) -> None:
    text = net_text(layer("Region", "region_param { classes: 3 num: 2 }"), {"x": (1, 15, 2, 2)})
    with pytest.raises(ShapeError, match=r"num 2 x \(coords 4 \+ 1 \+ classes 3\) = 16"):
        run(tmp_path, text, {"x": np.zeros((1, 15, 2, 2))})


def test_region_of_the_row_rewriting_port_is_refused(tmp_path: Path) -> None:
    params = "region_param { classes: 3 boxes_of_each_grid: 2 softmax: true }"
    text = net_text(layer("Region", params), {"x": (1, 16, 2, 2)})
    with pytest.raises(UnsupportedLayerError, match="boxes_of_each_grid/softmax"):
        run(tmp_path, text, {"x": np.zeros((1, 16, 2, 2))})


def test_reorg_and_region_build_with_tensorrt(tmp_path: Path) -> None:
    """A YOLOv2 passthrough (Reorg) and head (Region) build with tensorrt_rtx."""
    layers = layer("Reorg", "reorg_param { stride: 2 }", ("x",), ("r",), name="reorg") + layer(
        "Region", "region_param { classes: 3 coords: 4 num: 4 }", ("r",), ("y",), name="region"
    )
    result = build_prototxt(tmp_path, net_text(layers, {"x": (1, 8, 6, 6)}), "yolo")
    assert result.engine_bytes and [t.name for t in result.outputs] == ["y"]
