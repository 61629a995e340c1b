"""Data-movement layers against Caffe's definitions: Reshape 0/-1 with axis/num_axes, Flatten
end_axis, Concat and Slice with legacy dims, Split, Crop offsets, Permute, Tile, Silence,
Dropout, Parameter, Input, ShuffleChannel, Interp, Upsample."""

from __future__ import annotations

import numpy as np
import pytest
from caffe_harness import close, layer, net_text, rng, run

X = rng(40).standard_normal((2, 6, 4, 5))


@pytest.mark.parametrize(
    ("params", "expected_shape"),
    [
        ("shape { dim: 0 dim: -1 }", (2, 120)),
        ("shape { dim: 0 dim: 3 dim: 2 dim: -1 }", (2, 3, 2, 20)),
        ("shape { dim: -1 dim: 10 }", (24, 10)),
        ("axis: 1 num_axes: 1 shape { dim: 2 dim: 3 }", (2, 2, 3, 4, 5)),
        ("axis: 2 num_axes: 2 shape { dim: -1 }", (2, 6, 20)),
        ("axis: 1 num_axes: 0 shape { dim: 1 }", (2, 1, 6, 4, 5)),
        ("axis: -1 shape { dim: 1 dim: 1 }", (2, 6, 4, 5, 1, 1)),
        ("shape { dim: 0 dim: 0 dim: 20 }", (2, 6, 20)),
    ],
)
def test_reshape(tmp_path, params, expected_shape) -> None:  # type: ignore[no-untyped-def]
    out = run(
        tmp_path,
        net_text(layer("Reshape", f"reshape_param {{ {params} }}"), {"x": X.shape}),
        {"x": X},
    )
    close(out["y"], X.reshape(expected_shape))


@pytest.mark.parametrize(
    ("params", "expected_shape"),
    [
        ("", (2, 120)),
        ("flatten_param { axis: 2 }", (2, 6, 20)),
        ("flatten_param { axis: 1 end_axis: 2 }", (2, 24, 5)),
        ("flatten_param { axis: 0 end_axis: -2 }", (48, 5)),
    ],
)
def test_flatten(tmp_path, params, expected_shape) -> None:  # type: ignore[no-untyped-def]
    out = run(tmp_path, net_text(layer("Flatten", params), {"x": X.shape}), {"x": X})
    close(out["y"], X.reshape(expected_shape))


@pytest.mark.parametrize(
    ("params", "axis"),
    [
        ("", 1),
        ("concat_param { axis: 2 }", 2),
        ("concat_param { axis: -1 }", 3),
        ("concat_param { concat_dim: 0 }", 0),
        ("concat_param { concat_dim: 2 axis: 3 }", 2),
    ],
)
def test_concat(tmp_path, params, axis) -> None:  # type: ignore[no-untyped-def]
    r = rng(41)
    shape_b = list(X.shape)
    shape_b[axis] = 3
    b = r.standard_normal(shape_b)
    text = net_text(layer("Concat", params, ("x", "b")), {"x": X.shape, "b": shape_b})
    out = run(tmp_path, text, {"x": X, "b": b})
    close(out["y"], np.concatenate([X, b], axis=axis))


@pytest.mark.parametrize(
    ("params", "axis", "points", "tops"),
    [
        ("slice_param { slice_point: 1 slice_point: 4 }", 1, [1, 4], 3),
        ("slice_param { axis: 3 }", 3, [], 5),
        ("slice_param { slice_dim: 2 slice_point: 3 }", 2, [3], 2),
        ("slice_param { axis: -2 }", 2, [], 2),
    ],
)
def test_slice(tmp_path, params, axis, points, tops) -> None:  # type: ignore[no-untyped-def]
    names = [f"t{i}" for i in range(tops)]
    out = run(tmp_path, net_text(layer("Slice", params, ("x",), names), {"x": X.shape}), {"x": X})
    parts = np.split(X, points or tops, axis=axis)
    for name, part in zip(names, parts, strict=True):
        close(out[name], part)


def test_split_dropout_and_silence(tmp_path) -> None:  # type: ignore[no-untyped-def]
    text = net_text(
        layer("Split", "", ("x",), ("a", "b"), name="split")
        + layer("Dropout", "dropout_param { dropout_ratio: 0.5 }", ("a",), ("d",), name="drop")
        + layer("Silence", "", ("b",), (), name="silence"),
        {"x": X.shape},
    )
    out = run(tmp_path, text, {"x": X})
    assert list(out) == ["d"]
    close(out["d"], X)


@pytest.mark.parametrize(
    ("params", "axis", "offsets", "ref_shape"),
    [
        ("crop_param { offset: 1 }", 2, [0, 0, 1, 1], (2, 6, 2, 3)),
        ("crop_param { axis: 1 offset: 2 offset: 0 offset: 1 }", 1, [0, 2, 0, 1], (2, 3, 4, 3)),
        ("crop_param { axis: 3 }", 3, [0, 0, 0, 0], (2, 6, 4, 2)),
    ],
)
def test_crop(tmp_path, params, axis, offsets, ref_shape) -> None:  # type: ignore[no-untyped-def]
    ref = np.zeros(ref_shape)
    text = net_text(layer("Crop", params, ("x", "r")), {"x": X.shape, "r": ref_shape})
    out = run(tmp_path, text, {"x": X, "r": ref})
    index = tuple(
        slice(o, o + s) if i >= axis else slice(None)
        for i, (o, s) in enumerate(zip(offsets, ref_shape, strict=True))
    )
    close(out["y"], X[index])


@pytest.mark.parametrize(("order", "perm"), [("0 2 3 1", (0, 2, 3, 1)), ("0 3", (0, 3, 1, 2))])
def test_permute(tmp_path, order, perm) -> None:  # type: ignore[no-untyped-def]
    params = "permute_param { " + " ".join(f"order: {o}" for o in order.split()) + " }"
    out = run(tmp_path, net_text(layer("Permute", params), {"x": X.shape}), {"x": X})
    close(out["y"], X.transpose(perm))


def test_tile(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = run(
        tmp_path,
        net_text(layer("Tile", "tile_param { axis: 2 tiles: 3 }"), {"x": X.shape}),
        {"x": X},
    )
    close(out["y"], np.tile(X, (1, 1, 3, 1)))


def test_parameter_and_input_layer(tmp_path) -> None:  # type: ignore[no-untyped-def]
    p = rng(42).standard_normal((3, 4))
    text = (
        layer("Input", "input_param { shape { dim: 2 dim: 3 dim: 4 } }", (), ("x",), name="data")
        + layer("Parameter", "parameter_param { shape { dim: 3 dim: 4 } }", (), ("p",), name="P")
        + layer("Bias", "", ("x", "p"), ("y",), name="sum")
    )
    x = rng(43).standard_normal((2, 3, 4))
    out = run(tmp_path, text, {"x": x}, {"P": [p]})
    close(out["y"], x + p)


def test_shuffle_channel(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = run(
        tmp_path,
        net_text(layer("ShuffleChannel", "shuffle_channel_param { group: 3 }"), {"x": X.shape}),
        {"x": X},
    )
    close(out["y"], X.reshape(2, 3, 2, 4, 5).transpose(0, 2, 1, 3, 4).reshape(X.shape))


def caffe_interp2(x, h2, w2):  # type: ignore[no-untyped-def]
    """Caffe's caffe_cpu_interp2: bilinear with the corners aligned (its loop over output
    columns written as numpy indexing, one output row at a time)."""
    _, _, h1, w1 = x.shape
    rh = (h1 - 1) / (h2 - 1) if h2 > 1 else 0.0
    rw = (w1 - 1) / (w2 - 1) if w2 > 1 else 0.0
    y = np.zeros((*x.shape[:2], h2, w2), dtype=np.result_type(x, np.float32))
    wr = rw * np.arange(w2)
    w0 = wr.astype(int)
    wp = (w0 < w1 - 1).astype(int)
    lw = wr - w0
    for i in range(h2):
        hr = rh * i
        h0 = int(hr)
        hp = 1 if h0 < h1 - 1 else 0
        lh = hr - h0
        y[:, :, i, :] = (1 - lh) * ((1 - lw) * x[:, :, h0, w0] + lw * x[:, :, h0, w0 + wp]) + (
            lh * ((1 - lw) * x[:, :, h0 + hp, w0] + lw * x[:, :, h0 + hp, w0 + wp])
        )
    return y


@pytest.mark.parametrize(
    ("params", "crop", "size"),
    [
        ("zoom_factor: 2", (0, 0), (7, 9)),
        ("shrink_factor: 2", (0, 0), (2, 3)),
        ("height: 6 width: 11", (0, 0), (6, 11)),
        ("zoom_factor: 3 pad_beg: -1 pad_end: -1", (1, 1), (4, 7)),
    ],
)
def test_interp(tmp_path, params, crop, size) -> None:  # type: ignore[no-untyped-def]
    out = run(
        tmp_path,
        net_text(layer("Interp", f"interp_param {{ {params} }}"), {"x": X.shape}),
        {"x": X},
    )
    b, e = crop
    cropped = X[:, :, b : X.shape[2] - e, b : X.shape[3] - e]
    close(out["y"], caffe_interp2(cropped, *size))


def test_upsample_nearest(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = run(
        tmp_path,
        net_text(layer("Upsample", "upsample_param { scale: 2 }"), {"x": X.shape}),
        {"x": X},
    )
    close(out["y"], X.repeat(2, axis=2).repeat(2, axis=3))


def test_reshape_count_mismatch_is_a_shape_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from trtimport.errors import ShapeError

    text = net_text(layer("Reshape", "reshape_param { shape { dim: 0 dim: 7 } }"), {"x": X.shape})
    with pytest.raises(ShapeError, match=r"'L'.*cannot become"):
        run(tmp_path, text, {"x": X})


def test_segnet_pooling_mask_and_unpooling(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Pooling's second top is Caffe's argmax mask (index in the H x W plane); Upsample with
    that mask puts every pooled value back at its position, zeros elsewhere."""
    x = rng(44).standard_normal((2, 3, 6, 8))
    text = net_text(
        layer(
            "Pooling",
            "pooling_param { pool: MAX kernel_size: 2 stride: 2 }",
            ("x",),
            ("p", "mask"),
            name="pool",
        )
        + layer("Upsample", "upsample_param { scale: 2 }", ("p", "mask"), ("u",), name="up"),
        {"x": x.shape},
    )
    out = run(tmp_path, text, {"x": x}, outputs=["p", "mask", "u"])
    windows = x.reshape(2, 3, 3, 2, 4, 2).transpose(0, 1, 2, 4, 3, 5).reshape(2, 3, 3, 4, 4)
    pooled, arg = windows.max(-1), windows.argmax(-1)
    rows = np.arange(3)[:, None] * 2 + arg // 2
    cols = np.arange(4)[None, :] * 2 + arg % 2
    mask = rows * 8 + cols
    close(out["p"], pooled)
    close(out["mask"], mask)
    unpooled = np.zeros((2, 3, 48))
    np.put_along_axis(unpooled, mask.reshape(2, 3, -1), pooled.reshape(2, 3, -1), axis=2)
    close(out["u"], unpooled.reshape(x.shape))
