"""Recognise TensorFlow, Keras and TFLite files by content, without importing TensorFlow."""

from __future__ import annotations

import re
from pathlib import Path

SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
#: HDF5 allows the superblock at 0, 512, 1024, 2048, … (a user block may come first).
_HDF5_OFFSETS = (0, 512, 1024, 2048)
#: Keras writes these root attributes into every whole-model HDF5 file.
_KERAS_H5_MARKERS = (b"model_config", b"keras_version")
_H5_SCAN_BYTES = 1 << 16
_TFLITE_IDENTIFIER = b"TFL3"
#: Extensions of other protobuf formats whose content could start like a GraphDef.
_NOT_GRAPHDEF_SUFFIXES = (".caffemodel", ".onnx", ".prototxt", ".pbtxt")

_NODE_NAME = re.compile(rb"[A-Za-z0-9.][A-Za-z0-9_.\-/>]*")
_OP_NAME = re.compile(rb"[A-Z][A-Za-z0-9_]*")


def _varint(data: bytes, pos: int) -> tuple[int, int] | None:
    """Decode a protobuf varint at ``pos``; returns (value, next position) or None."""
    value = shift = 0
    while pos < len(data) and shift < 64:
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return value, pos
        shift += 7
    return None


def _string_field(data: bytes, pos: int, tag: int) -> tuple[bytes, int] | None:
    """Read a length-delimited field with ``tag`` at ``pos``; returns (payload, next position)."""
    if pos >= len(data) or data[pos] != tag:
        return None
    length = _varint(data, pos + 1)
    if length is None or length[0] == 0 or length[1] + length[0] > len(data):
        return None
    start = length[1]
    return data[start : start + length[0]], start + length[0]


def is_saved_model_dir(path: Path) -> bool:
    """A SavedModel is a folder holding ``saved_model.pb`` (or ``.pbtxt``)."""
    return path.is_dir() and any((path / name).is_file() for name in SAVED_MODEL_FILES)


def is_saved_model_file(path: Path) -> bool:
    """The ``saved_model.pb`` inside a SavedModel folder, given instead of the folder."""
    return path.is_file() and path.name in SAVED_MODEL_FILES


def looks_like_graphdef(path: Path, head: bytes) -> bool:
    """A serialized GraphDef starts with a NodeDef (field 1) whose ``name`` and ``op`` are valid.

    A Caffe NetParameter also starts with field 1, but there it is the net's name, a plain
    string, never a nested message that starts with another field-1 tag.
    """
    if not path.is_file() or path.suffix.lower() in _NOT_GRAPHDEF_SUFFIXES:
        return False
    node = _string_field(head, 0, 0x0A)
    if node is None:
        # The first NodeDef may be longer than the head: read its fields from what we have.
        length = _varint(head, 1) if head[:1] == b"\x0a" else None
        if length is None:
            return False
        payload = head[length[1] :]
    else:
        payload = node[0]
    name = _string_field(payload, 0, 0x0A)
    if name is None or not _NODE_NAME.fullmatch(name[0]):
        return False
    op = _string_field(payload, name[1], 0x12)
    return op is not None and _OP_NAME.fullmatch(op[0]) is not None


def looks_like_keras_zip(path: Path, head: bytes) -> bool:
    """A ``.keras`` file is a zip archive with ``config.json`` and ``metadata.json``."""
    if not path.is_file() or not head.startswith(b"PK\x03\x04"):
        return False
    import zipfile  # only for zip files: detection runs for every model

    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False
    return {"config.json", "metadata.json"} <= names


def looks_like_keras_h5(path: Path, head: bytes) -> bool:
    """An HDF5 file whose root carries Keras' ``model_config``/``keras_version`` attributes."""
    if not path.is_file():
        return False
    with path.open("rb") as f:
        data = f.read(_H5_SCAN_BYTES)
    if not any(data[offset : offset + 8] == HDF5_MAGIC for offset in _HDF5_OFFSETS):
        return False
    return any(marker in data for marker in _KERAS_H5_MARKERS)


def is_hdf5(path: Path) -> bool:
    """True if ``path`` has an HDF5 superblock signature."""
    with path.open("rb") as f:
        data = f.read(_HDF5_OFFSETS[-1] + 8)
    return any(data[offset : offset + 8] == HDF5_MAGIC for offset in _HDF5_OFFSETS)


def looks_like_tflite(path: Path, head: bytes) -> bool:
    """A TFLite flatbuffer carries the file identifier ``TFL3`` at bytes 4..8."""
    return path.is_file() and head[4:8] == _TFLITE_IDENTIFIER
