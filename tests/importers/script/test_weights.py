"""Weight files for network scripts: every format into one checked mapping."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from trtimport.errors import ModelParseError, UsageError
from trtimport.importers.script.weights import (
    WeightNameError,
    WeightShapeError,
    load_weights,
)

REPO = Path(__file__).resolve().parents[3]


def _safetensors(path: Path, tensors: dict[str, tuple[str, tuple[int, ...], bytes]]) -> Path:
    header, body, offset = {}, b"", 0
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {
            "dtype": dtype,
            "shape": list(shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        body += raw
        offset += len(raw)
    header["__metadata__"] = {"format": "pt"}
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + body)
    return path


def test_npz(tmp_path: Path) -> None:
    """.npz arrays load by name."""
    np.savez(tmp_path / "w.npz", **{"conv1/0": np.ones((2, 1, 3, 3), np.float32)})
    w = load_weights(tmp_path / "w.npz")
    assert list(w) == ["conv1/0"]
    assert w["conv1/0"].shape == (2, 1, 3, 3)


def test_npz_with_pickles_is_refused(tmp_path: Path) -> None:
    """Object arrays would need unpickling: refused with a clear message."""
    np.savez(tmp_path / "w.npz", bad=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ModelParseError, match="pickled"):
        load_weights(tmp_path / "w.npz")


def test_safetensors_dtypes(tmp_path: Path) -> None:
    """F32, F16, BF16 (-> float32), I64 and U8 tensors read back exactly."""
    f32 = np.arange(6, dtype="<f4").reshape(2, 3)
    f16 = np.array([1.5, -2.0], dtype="<f2")
    bf16_values = np.array([1.0, -3.5, 0.15625], np.float32)
    bf16 = (bf16_values.view(np.uint32) >> 16).astype("<u2")
    i64 = np.array([-1, 7], dtype="<i8")
    u8 = np.array([0, 255], dtype="u1")
    path = _safetensors(
        tmp_path / "w.safetensors",
        {
            "a": ("F32", f32.shape, f32.tobytes()),
            "b": ("F16", f16.shape, f16.tobytes()),
            "c": ("BF16", bf16.shape, bf16.tobytes()),
            "d": ("I64", i64.shape, i64.tobytes()),
            "e": ("U8", u8.shape, u8.tobytes()),
        },
    )
    w = load_weights(path)
    np.testing.assert_array_equal(w["a"], f32)
    np.testing.assert_array_equal(w["b"], f16)
    np.testing.assert_array_equal(w["c"], bf16_values)
    assert w["c"].dtype == np.float32
    np.testing.assert_array_equal(w["d"], i64)
    np.testing.assert_array_equal(w["e"], u8)


def test_safetensors_unknown_dtype_and_truncation(tmp_path: Path) -> None:
    """An unknown dtype is named; a header running past the end is called truncated."""
    path = _safetensors(tmp_path / "w.safetensors", {"x": ("F8_E4M3", (2,), b"\0\0")})
    with pytest.raises(ModelParseError, match="'x': dtype F8_E4M3 is not supported"):
        load_weights(path)
    data = _safetensors(tmp_path / "ok.safetensors", {"x": ("F32", (1,), b"\0" * 4)}).read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[:12])
    with pytest.raises(ModelParseError, match="truncated"):
        load_weights(tmp_path / "cut.safetensors")


def _wts(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    lines = [str(len(arrays))]
    for name, values in arrays.items():
        flat = values.reshape(-1)
        words = " ".join(struct.pack(">f", float(v)).hex() for v in flat)
        lines.append(f"{name} {flat.size} {words}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_wts_reads_flat_arrays_and_takes_shapes(tmp_path: Path) -> None:
    """tensorrtx .wts: flat float32 arrays; get(shape=...) gives them their shape."""
    kernel = np.random.default_rng(0).standard_normal((4, 1, 2, 2)).astype(np.float32)
    w = load_weights(
        _wts(tmp_path / "w.wts", {"conv.weight": kernel, "conv.bias": kernel[:, 0, 0, 0]})
    )
    assert w["conv.weight"].shape == (16,)
    np.testing.assert_array_equal(w.get("conv.weight", shape=(4, 1, 2, 2)), kernel)


def test_wts_count_mismatch_names_the_line(tmp_path: Path) -> None:
    """A weight line with fewer values than declared is reported with its line number."""
    (tmp_path / "w.wts").write_text("1\nfc 3 3f800000 40000000\n")
    with pytest.raises(ModelParseError, match=r"w\.wts:2: weight 'fc' declares 3 values but has 2"):
        load_weights(tmp_path / "w.wts")


def test_onnx_initializers(tmp_path: Path) -> None:
    """An ONNX model's initializers are weights by their tensor names."""
    import onnx
    from onnx import helper, numpy_helper

    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3])],
        [numpy_helper.from_array(w, "W")],
    )
    onnx.save(helper.make_model(graph), str(tmp_path / "m.onnx"))
    np.testing.assert_array_equal(load_weights(tmp_path / "m.onnx")["W"], w)


def test_onnx_external_data_outside_folder_is_refused(tmp_path: Path) -> None:
    """External data may only come from the model's own folder."""
    import onnx
    from onnx import helper

    tensor = onnx.TensorProto(name="W", data_type=onnx.TensorProto.FLOAT, dims=[2])
    tensor.data_location = onnx.TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value="../secret.bin")
    graph = helper.make_graph(
        [helper.make_node("Identity", ["W"], ["y"])],
        "g",
        [],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2])],
        [tensor],
    )
    (tmp_path / "m").mkdir()
    onnx.save(helper.make_model(graph), str(tmp_path / "m" / "m.onnx"))
    with pytest.raises(ModelParseError, match="outside the model's folder"):
        load_weights(tmp_path / "m" / "m.onnx")


def test_caffemodel_blobs_are_layer_slash_index() -> None:
    """A .caffemodel's blobs are named <layer>/<index> (needs the Caffe importer)."""
    pytest.importorskip("trtimport.importers.caffe.parse")
    cv2 = pytest.importorskip("cv2")
    model = REPO / "examples" / "mnist"
    w = load_weights(model / "lenet.caffemodel")
    net = cv2.dnn.readNetFromCaffe(str(model / "lenet.prototxt"), str(model / "lenet.caffemodel"))
    for layer in ("conv1", "conv2", "ip1", "ip2"):
        for i in range(2):
            want = net.getParam(layer, i)
            got = w.get(f"{layer}/{i}", shape=want.shape)
            np.testing.assert_array_equal(got, want)


def test_missing_name_lists_near_matches(tmp_path: Path) -> None:
    """A wrong name is a WeightNameError suggesting the close ones."""
    np.savez(
        tmp_path / "w.npz", **{"conv1/0": np.zeros(1), "conv1/1": np.zeros(1), "ip1/0": np.zeros(1)}
    )
    w = load_weights(tmp_path / "w.npz")
    assert "conv1/0" in w and "conv1/2" not in w
    with pytest.raises(
        WeightNameError, match=r"no weight named 'conv1/2'; did you mean 'conv1/1', 'conv1/0'"
    ):
        w["conv1/2"]
    with pytest.raises(WeightNameError, match="no weight named 'zzz'; it has 3 weights"):
        w.get("zzz", shape=(1,))


def test_wrong_shape_names_expected_and_found(tmp_path: Path) -> None:
    """A shape mismatch names the weight, what the network needs and what the file has."""
    np.savez(tmp_path / "w.npz", k=np.zeros((20, 1, 5, 5), np.float32))
    w = load_weights(tmp_path / "w.npz")
    with pytest.raises(
        WeightShapeError, match=r"'k' has shape \[20, 1, 5, 5\].*needs \[20, 1, 3, 3\]"
    ):
        w.get("k", shape=(20, 1, 3, 3))
    assert w.get("k", shape=(20, 1, 1, 5, 5)).shape == (20, 1, 1, 5, 5)


def test_unknown_weights_format(tmp_path: Path) -> None:
    """A suffix no loader handles is a usage error listing the supported ones."""
    (tmp_path / "w.bin").write_bytes(b"x")
    with pytest.raises(UsageError, match=r"\.npz, \.safetensors, \.wts, \.caffemodel, \.onnx"):
        load_weights(tmp_path / "w.bin")
