"""Read a binary caffemodel without a Python object per weight.

A caffemodel is a serialized ``NetParameter``. Its size is almost entirely the ``data`` of the
``BlobProto`` messages inside each layer. This module walks the protobuf wire format itself over
an ``mmap`` of the file: every blob's packed float32 ``data`` becomes a zero-copy
``np.frombuffer`` view of the mapping, and everything else (the layer definitions, which are
small) is handed to the generated stubs with the blob bytes cut out. Such views remember their
place in the file (:func:`trtimport.onnxtools.mapped.file_region`), so the ONNX writer can
copy them without reading them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from trtimport.errors import ModelParseError
from trtimport.importers.caffe.proto import caffe_pb2
from trtimport.importers.caffe.wire import (
    BLOB_CHANNELS,
    BLOB_DATA,
    BLOB_DOUBLE_DATA,
    BLOB_HEIGHT,
    BLOB_NUM,
    BLOB_RAW_DATA,
    BLOB_RAW_DATA_TYPE,
    BLOB_SHAPE,
    BLOB_WIDTH,
    LAYER_BLOBS,
    NET_LAYER,
    NET_LAYERS,
    SHAPE_DIM,
    V0_BLOBS,
    V1_BLOBS,
    V1_V0,
)
from trtimport.onnxtools.mapped import map_file
from trtimport.onnxtools.protowire import (
    I32,
    I64,
    LEN,
    VARINT,
    WireError,
    encode_varint,
    iter_fields,
    next_field,
    read_varint,
)

_FLOAT_LE = np.dtype("<f4")
_DOUBLE_LE = np.dtype("<f8")
#: NVCaffe's ``raw_data_type`` (its ``Type`` enum) -> the dtype of ``raw_data``'s bytes.
_RAW_DTYPES: dict[int, np.dtype] = {0: _DOUBLE_LE, 1: _FLOAT_LE, 2: np.dtype("<f2")}
_RAW_TYPE_NAMES = {3: "INT", 4: "UINT", 5: "BOOL"}


class RawTypeError(ValueError):
    """An NVCaffe ``raw_data`` blob of a type that cannot hold weights (INT, UINT, BOOL)."""


@dataclass
class BlobLayout:
    """Where one blob's parts are in the buffer, before turning them into an array."""

    shape: list[int] | None = None
    legacy: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    float_chunks: list[tuple[int, int]] = field(default_factory=list)
    float_runs: list[np.ndarray] = field(default_factory=list)
    double_chunks: list[tuple[int, int]] = field(default_factory=list)
    double_runs: list[np.ndarray] = field(default_factory=list)
    has_legacy: bool = False
    raw: tuple[int, int] | None = None  # NVCaffe's raw_data bytes
    raw_type: int = 0  # NVCaffe's raw_data_type (DOUBLE when absent, the enum's default)


def _read_shape(buf: memoryview, start: int, end: int) -> list[int]:
    dims: list[int] = []
    for number, wire, value, _, field_end in iter_fields(buf, start, end):
        if number != SHAPE_DIM:
            continue
        if wire == VARINT:
            dims.append(_signed64(value))
        elif wire == LEN:
            pos = value
            while pos < field_end:
                dim, pos = read_varint(buf, pos, field_end)
                dims.append(_signed64(dim))
    return dims


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _unpacked_run(
    buf: memoryview, pos: int, end: int, tag: int, dtype: np.dtype
) -> tuple[np.ndarray, int]:
    """Values of consecutive unpacked ``tag``-prefixed fixed-size fields starting at ``pos``.

    Old writers emit repeated floats one field each (a tag byte, then the value); reading such a
    run as a strided numpy record array avoids a Python step per value.
    """
    record = np.dtype([("tag", "u1"), ("value", dtype)])
    available = (end - pos) // record.itemsize
    if available == 0:  # a tag with no room for its value: the run would never advance
        raise WireError(pos, "the data ends inside a number (the file is truncated)")
    records = np.frombuffer(buf, record, available, pos)
    mismatch = np.flatnonzero(records["tag"] != tag)
    count = int(mismatch[0]) if mismatch.size else available
    return records["value"][:count].astype(dtype.newbyteorder("=")), pos + count * record.itemsize


_FLOAT_TAG = BLOB_DATA << 3 | I32
_DOUBLE_TAG = BLOB_DOUBLE_DATA << 3 | I64


def _layout(buf: memoryview, start: int, end: int) -> BlobLayout:
    blob = BlobLayout()
    pos = start
    while pos < end:
        if buf[pos] == _FLOAT_TAG:
            values, pos = _unpacked_run(buf, pos, end, _FLOAT_TAG, _FLOAT_LE)
            blob.float_runs.append(values)
            continue
        if buf[pos] == _DOUBLE_TAG:
            values, pos = _unpacked_run(buf, pos, end, _DOUBLE_TAG, _DOUBLE_LE)
            blob.double_runs.append(values)
            continue
        number, wire, value, field_end = next_field(buf, pos, end)
        if number == BLOB_SHAPE and wire == LEN:
            blob.shape = _read_shape(buf, value, field_end)
        elif number == BLOB_DATA and wire == LEN:
            blob.float_chunks.append((value, field_end))
        elif number == BLOB_DOUBLE_DATA and wire == LEN:
            blob.double_chunks.append((value, field_end))
        elif number in (BLOB_NUM, BLOB_CHANNELS, BLOB_HEIGHT, BLOB_WIDTH) and wire == VARINT:
            blob.legacy[number - 1] = _signed64(value)
            blob.has_legacy = True
        elif number == BLOB_RAW_DATA and wire == LEN:
            blob.raw = (value, field_end)
        elif number == BLOB_RAW_DATA_TYPE and wire == VARINT:
            blob.raw_type = value
        pos = field_end
    return blob


def _values(
    buf: memoryview, chunks: list[tuple[int, int]], runs: list[np.ndarray], dtype: np.dtype
) -> np.ndarray | None:
    if not chunks and not runs:
        return None
    parts: list[np.ndarray] = []
    for start, end in chunks:
        if (end - start) % dtype.itemsize:
            raise WireError(start, f"packed data of {end - start} bytes is not whole numbers")
        parts.append(np.frombuffer(buf, dtype, (end - start) // dtype.itemsize, start))
    parts.extend(runs)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _raw_values(buf: memoryview, blob: BlobLayout) -> np.ndarray:
    """NVCaffe's ``raw_data``: little-endian values of ``raw_data_type`` (FLOAT16: fp16 nets)."""
    assert blob.raw is not None
    start, end = blob.raw
    dtype = _RAW_DTYPES.get(blob.raw_type)
    if dtype is None:
        name = _RAW_TYPE_NAMES.get(blob.raw_type, str(blob.raw_type))
        raise RawTypeError(
            f"a blob at byte {start} stores NVCaffe raw_data of type {name}; weights must be "
            "DOUBLE, FLOAT or FLOAT16 (re-save the caffemodel from a float net)"
        )
    values = _values(buf, [(start, end)], [], dtype)
    assert values is not None
    return values


def decode_blob(buf: memoryview, start: int, end: int) -> np.ndarray:
    """One ``BlobProto`` as a float32 array shaped by its ``shape`` (or legacy 4-D dims).

    Packed float32 data is returned as a read-only view of ``buf`` (no copy).
    """
    blob = _layout(buf, start, end)
    floats = _values(buf, blob.float_chunks, blob.float_runs, _FLOAT_LE)
    if floats is None:
        doubles = _values(buf, blob.double_chunks, blob.double_runs, _DOUBLE_LE)
        if doubles is None and blob.raw is not None:
            doubles = _raw_values(buf, blob)
        floats = np.empty(0, np.float32) if doubles is None else doubles.astype(np.float32)
    if blob.shape is not None:
        shape = tuple(blob.shape)
    elif blob.has_legacy:
        shape = tuple(blob.legacy)
    else:
        shape = (floats.size,)
    count = int(np.prod(shape, dtype=np.int64))
    if any(d < 0 for d in shape) or count != floats.size:
        raise WireError(
            start, f"a blob declares shape {list(shape)} ({count} values) but holds {floats.size}"
        )
    return floats.reshape(shape)


@dataclass
class LayerBlobs:
    """One layer of a caffemodel: its definition without blobs, and its blobs."""

    definition: bytes
    blobs: list[np.ndarray]
    legacy: bool  # a V1 ``layers`` entry (V1LayerParameter) rather than a V2 ``layer``


def _strip(
    buf: memoryview, start: int, end: int, blob_field: int, nested_v0: bool
) -> tuple[bytes, list[np.ndarray]]:
    """A layer message's bytes with its blob fields removed, and the decoded blobs."""
    kept: list[bytes] = []
    blobs: list[np.ndarray] = []
    for number, wire, value, field_start, field_end in iter_fields(buf, start, end):
        if number == blob_field and wire == LEN:
            blobs.append(decode_blob(buf, value, field_end))
        elif nested_v0 and number == V1_V0 and wire == LEN:
            inner, inner_blobs = _strip(buf, value, field_end, V0_BLOBS, nested_v0=False)
            blobs.extend(inner_blobs)
            kept.append(bytes([V1_V0 << 3 | LEN]) + encode_varint(len(inner)))
            kept.append(inner)
        else:
            kept.append(bytes(buf[field_start:field_end]))
    return b"".join(kept), blobs


@dataclass
class Caffemodel:
    """A decoded caffemodel: the net's non-layer fields, then each layer in file order."""

    header: bytes
    layers: list[LayerBlobs]


def walk_caffemodel(buf: memoryview) -> Caffemodel:
    """Split a serialized ``NetParameter`` into its header and its layers with their blobs."""
    header: list[bytes] = []
    layers: list[LayerBlobs] = []
    for number, wire, value, field_start, field_end in iter_fields(buf, 0, len(buf)):
        if number == NET_LAYER and wire == LEN:
            definition, blobs = _strip(buf, value, field_end, LAYER_BLOBS, nested_v0=False)
            layers.append(LayerBlobs(definition, blobs, legacy=False))
        elif number == NET_LAYERS and wire == LEN:
            definition, blobs = _strip(buf, value, field_end, V1_BLOBS, nested_v0=True)
            layers.append(LayerBlobs(definition, blobs, legacy=True))
        else:
            header.append(bytes(buf[field_start:field_end]))
    return Caffemodel(b"".join(header), layers)


@dataclass
class CaffemodelContents:
    """A caffemodel as a net (blobs stripped, V1/V0 form kept) plus its blobs by layer name."""

    net: caffe_pb2.NetParameter
    weights: dict[str, list[np.ndarray]]


def read_caffemodel(path: Path) -> CaffemodelContents:
    """Decode ``path``; blobs are zero-copy float32 views of a read-only mapping of the file.

    Raises :class:`ModelParseError` naming the file and byte offset if it is truncated or
    not a caffemodel.
    """
    from google.protobuf.message import DecodeError

    path = Path(path)
    try:
        size = path.stat().st_size
        if size == 0:
            raise ModelParseError(f"{path}: the caffemodel is empty")
        mapping = map_file(path)
    except OSError as err:
        raise ModelParseError(f"{path}: cannot read the caffemodel: {err}") from err
    buf = memoryview(mapping)
    if _looks_like_text(bytes(buf[:256])):
        raise ModelParseError(
            f"{path}: this is a text file, not a binary caffemodel; pass the deploy prototxt "
            "as the model and the .caffemodel with --weights"
        )
    try:
        walked = walk_caffemodel(buf)
        net = caffe_pb2.NetParameter.FromString(walked.header)
        weights: dict[str, list[np.ndarray]] = {}
        for layer in walked.layers:
            if layer.legacy:
                entry = net.layers.add()
                entry.MergeFromString(layer.definition)
                name = entry.name or entry.layer.name
            else:
                added = net.layer.add()
                added.MergeFromString(layer.definition)
                name = added.name
            if layer.blobs:
                weights[name] = layer.blobs
    except RawTypeError as err:
        raise ModelParseError(f"{path}: {err}") from err
    except WireError as err:
        raise ModelParseError(
            f"{path}: corrupt or truncated caffemodel ({err}; file size {size} bytes). "
            "Re-download or re-export it."
        ) from err
    except DecodeError as err:
        raise ModelParseError(
            f"{path}: corrupt caffemodel: a layer definition does not decode ({err}). "
            "Re-download or re-export it."
        ) from err
    if not net.layer and not net.layers:
        raise ModelParseError(f"{path}: not a caffemodel (it contains no layers)")
    return CaffemodelContents(net, weights)


def _looks_like_text(head: bytes) -> bool:
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in "\r\n\t" for ch in text)
