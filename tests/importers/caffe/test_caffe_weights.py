"""The wire-level caffemodel reader against the protobuf stubs, and its legacy/odd encodings."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from trtimport.errors import ModelParseError
from trtimport.importers.caffe.proto import caffe_pb2
from trtimport.importers.caffe.weights import read_caffemodel

REPO = Path(__file__).resolve().parents[3]
CAFFEMODELS = [
    *sorted((REPO / "tests" / "data" / "caffe" / "weights").glob("*.caffemodel")),
    REPO / "examples" / "mnist" / "lenet.caffemodel",
]


def _stub_blob(blob: caffe_pb2.BlobProto) -> np.ndarray:
    values = np.array(blob.data or blob.double_data, dtype=np.float32)
    if blob.HasField("shape"):
        return values.reshape(tuple(blob.shape.dim))
    return values.reshape(blob.num, blob.channels, blob.height, blob.width)


@pytest.mark.parametrize("path", CAFFEMODELS, ids=lambda p: p.name)
def test_real_caffemodel_matches_protobuf_stubs(path: Path) -> None:
    got = read_caffemodel(path)
    reference = caffe_pb2.NetParameter.FromString(path.read_bytes())
    count = 0
    for layer in reference.layer:
        if layer.blobs:
            blobs = got.weights[layer.name]
            assert len(blobs) == len(layer.blobs)
            for mine, theirs in zip(blobs, layer.blobs, strict=True):
                expected = _stub_blob(theirs)
                assert mine.dtype == np.float32
                assert mine.shape == expected.shape
                np.testing.assert_array_equal(mine, expected)
                count += 1
        layer.ClearField("blobs")
    assert count > 0
    assert got.net == reference  # the structure survives with only the blobs removed


def test_packed_data_is_a_read_only_view_of_the_file() -> None:
    blobs = read_caffemodel(CAFFEMODELS[0]).weights["conv1"]
    assert not blobs[0].flags.owndata
    assert not blobs[0].flags.writeable


def _write(tmp_path: Path, net: caffe_pb2.NetParameter, name: str = "m.caffemodel") -> Path:
    path = tmp_path / name
    path.write_bytes(net.SerializeToString())
    return path


def test_v1_layers_with_legacy_dims_and_double_data(tmp_path: Path) -> None:
    net = caffe_pb2.NetParameter(name="old")
    entry = net.layers.add(name="ip", type=caffe_pb2.V1LayerParameter.INNER_PRODUCT)
    entry.bottom.append("data")
    entry.top.append("ip")
    weight = entry.blobs.add(num=1, channels=1, height=2, width=3)
    weight.data.extend([1, 2, 3, 4, 5, 6])
    bias = entry.blobs.add(num=1, channels=1, height=1, width=2)
    bias.double_data.extend([0.5, -1.25])
    got = read_caffemodel(_write(tmp_path, net))
    w, b = got.weights["ip"]
    assert w.shape == (1, 1, 2, 3)
    np.testing.assert_array_equal(w.ravel(), [1, 2, 3, 4, 5, 6])
    assert b.dtype == np.float32 and b.shape == (1, 1, 1, 2)
    np.testing.assert_array_equal(b.ravel(), [0.5, -1.25])
    assert got.net.layers[0].type == caffe_pb2.V1LayerParameter.INNER_PRODUCT
    assert not got.net.layers[0].blobs


def test_v0_blobs_nested_in_v1_entries(tmp_path: Path) -> None:
    net = caffe_pb2.NetParameter()
    entry = net.layers.add()
    entry.layer.name = "conv"
    entry.layer.type = "conv"
    entry.layer.num_output = 2
    entry.layer.blobs.add(num=2, channels=1, height=1, width=1).data.extend([3, 4])
    got = read_caffemodel(_write(tmp_path, net))
    np.testing.assert_array_equal(got.weights["conv"][0].ravel(), [3, 4])
    assert got.net.layers[0].layer.num_output == 2
    assert not got.net.layers[0].layer.blobs


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def test_unpacked_floats_doubles_and_split_packed_chunks(tmp_path: Path) -> None:
    """Old writers emitted repeated floats one field each; packed data may also be split."""
    unpacked = b"".join(b"\x2d" + struct.pack("<f", v) for v in (1.5, -2.0, 3.25))
    shape = _field(7, _field(1, _varint(3)))
    doubles = b"".join(b"\x41" + struct.pack("<d", v) for v in (0.25, 8.0))
    split = _field(5, struct.pack("<2f", 1, 2)) + _field(5, struct.pack("<f", 3))
    layer = (
        _field(1, b"mixed")
        + _field(2, b"Convolution")
        + _field(7, shape + unpacked)
        + _field(7, doubles)
        + _field(7, split)
    )
    path = tmp_path / "m.caffemodel"
    path.write_bytes(_field(100, layer))
    got = read_caffemodel(path).weights["mixed"]
    np.testing.assert_array_equal(got[0], np.array([1.5, -2.0, 3.25], np.float32))
    np.testing.assert_array_equal(got[1], np.array([0.25, 8.0], np.float32))
    np.testing.assert_array_equal(got[2], np.array([1, 2, 3], np.float32))


def test_blob_whose_shape_disagrees_with_its_data(tmp_path: Path) -> None:
    net = caffe_pb2.NetParameter()
    layer = net.layer.add(name="bad", type="Convolution")
    blob = layer.blobs.add()
    blob.shape.dim.extend([2, 3])
    blob.data.extend([1, 2, 3])
    with pytest.raises(ModelParseError, match=r"shape \[2, 3\] \(6 values\) but holds 3"):
        read_caffemodel(_write(tmp_path, net))


def test_truncated_caffemodel_names_file_and_offset(tmp_path: Path) -> None:
    data = CAFFEMODELS[0].read_bytes()
    path = tmp_path / "cut.caffemodel"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelParseError) as info:
        read_caffemodel(path)
    message = str(info.value)
    assert str(path) in message and "truncated" in message and "at byte" in message


def test_text_and_empty_files_are_not_caffemodels(tmp_path: Path) -> None:
    text = tmp_path / "deploy.caffemodel"
    text.write_text('name: "x"\nlayer { name: "a" }\n')
    with pytest.raises(ModelParseError, match="text file, not a binary caffemodel"):
        read_caffemodel(text)
    empty = tmp_path / "empty.caffemodel"
    empty.write_bytes(b"")
    with pytest.raises(ModelParseError, match="empty"):
        read_caffemodel(empty)
