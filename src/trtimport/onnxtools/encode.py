"""Serialize the ONNX messages a converter writes (nodes, value infos, graphs, model headers).

Importing the ``onnx`` package costs 1.4-2 s of a command's start on a 2-core machine (most of
it ``ml_dtypes``, which ``onnx.helper`` imports), more than converting a 553 MB Caffe model.
The Caffe converter only ever writes a few message kinds, so it encodes them here with the
protobuf wire format: the same bytes ``onnx.helper`` and ``SerializeToString`` give (fields in
number order; onnx.proto is proto2, so repeated numbers are not packed), checked against them
by the tests. Attribute values of other kinds (tensors, graphs) go through ``onnx.helper``.
Field numbers are those of ``onnx/onnx.proto``.
"""

from __future__ import annotations

import numbers
import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from trtimport.onnxtools.protowire import LEN, VARINT, encode_varint

#: ``TensorProto.DataType`` of the numpy dtypes (by ``dtype.str`` without byte order).
DATA_TYPES = {
    "f4": 1,
    "u1": 2,
    "i1": 3,
    "u2": 4,
    "i2": 5,
    "i4": 6,
    "i8": 7,
    "b1": 9,
    "f2": 10,
    "f8": 11,
    "u4": 12,
    "u8": 13,
}
#: The lowest IR version that allows each default-domain opset (onnx.helper.VERSION_TABLE).
_IR_FOR_OPSET = {
    **dict.fromkeys(range(1, 9), 3),
    9: 4,
    10: 5,
    11: 6,
    **dict.fromkeys(range(12, 15), 7),
    **dict.fromkeys(range(15, 19), 8),
    19: 9,
    20: 9,
    21: 10,
    22: 10,
    23: 11,
}
# AttributeProto.AttributeType.
_FLOAT, _INT, _STRING, _FLOATS, _INTS, _STRINGS = 1, 2, 3, 6, 7, 8
_I32 = 5


def key(number: int, wire: int = LEN) -> bytes:
    """A field's key."""
    return encode_varint(number << 3 | wire)


def length_field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (a string, bytes or an embedded message)."""
    return key(number) + encode_varint(len(payload)) + payload


def int_field(number: int, value: int) -> bytes:
    """A varint field; negative numbers as 64-bit two's complement, as protobuf writes them."""
    return key(number, VARINT) + encode_varint(value & 0xFFFFFFFFFFFFFFFF)


def _text(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


def data_type(dtype: Any) -> int:
    """``TensorProto.DataType`` of a numpy dtype."""
    import numpy as np

    dtype = np.dtype(dtype)
    return DATA_TYPES[f"{dtype.kind}{dtype.itemsize}"]


def min_ir_version(opsets: Mapping[str, int]) -> int | None:
    """The IR version ``onnx.helper.find_min_ir_version_for`` gives; None if not known here."""
    if set(opsets) - {"", "ai.onnx"}:
        return None
    return max((_IR_FOR_OPSET.get(v, 0) for v in opsets.values()), default=3) or None


def attribute(name: str, value: Any) -> bytes:
    """An ``AttributeProto``, typed as ``onnx.helper.make_attribute`` types it."""
    head = length_field(1, _text(name))
    if isinstance(value, numbers.Integral):
        return head + int_field(3, int(value)) + int_field(20, _INT)
    if isinstance(value, numbers.Real):
        return head + key(2, _I32) + struct.pack("<f", value) + int_field(20, _FLOAT)
    if isinstance(value, str | bytes):
        return head + length_field(4, _text(value)) + int_field(20, _STRING)
    if isinstance(value, Iterable):
        items = list(value)
        if items and all(isinstance(v, numbers.Integral) for v in items):
            return head + b"".join(int_field(8, int(v)) for v in items) + int_field(20, _INTS)
        if items and all(isinstance(v, numbers.Real) for v in items):
            floats = b"".join(key(7, _I32) + struct.pack("<f", float(v)) for v in items)
            return head + floats + int_field(20, _FLOATS)
        if items and all(isinstance(v, str | bytes) for v in items):
            strings = b"".join(length_field(9, _text(v)) for v in items)
            return head + strings + int_field(20, _STRINGS)
    from onnx import helper  # tensors, graphs, empty lists: onnx decides (or refuses)

    return bytes(helper.make_attribute(name, value).SerializeToString())


def node(
    op_type: str,
    inputs: Sequence[str],
    outputs: Sequence[str],
    name: str | None = None,
    doc_string: str | None = None,
    domain: str | None = None,
    **attrs: Any,
) -> bytes:
    """A ``NodeProto``, as ``onnx.helper.make_node`` makes it (attributes sorted by name)."""
    out = b"".join(length_field(1, _text(i)) for i in inputs)
    out += b"".join(length_field(2, _text(o)) for o in outputs)
    if name:
        out += length_field(3, _text(name))
    out += length_field(4, _text(op_type))
    out += b"".join(
        length_field(5, attribute(k, v)) for k, v in sorted(attrs.items()) if v is not None
    )
    if doc_string:
        out += length_field(6, _text(doc_string))
    if domain is not None:
        out += length_field(7, _text(domain))
    return out


def value_info(name: str, elem_type: int, shape: Sequence[int | str | None] | None) -> bytes:
    """A tensor ``ValueInfoProto`` (``onnx.helper.make_tensor_value_info``)."""
    tensor = int_field(1, elem_type)
    if shape is not None:
        dims = b""
        for d in shape:
            if isinstance(d, numbers.Integral):
                dims += length_field(1, int_field(1, int(d)))
            elif isinstance(d, str):
                dims += length_field(1, length_field(2, _text(d)))
            else:
                dims += length_field(1, b"")
        tensor += length_field(2, dims)
    return length_field(1, _text(name)) + length_field(2, length_field(1, tensor))


def graph(
    nodes: Iterable[bytes], name: str, inputs: Iterable[bytes], outputs: Iterable[bytes]
) -> bytes:
    """A ``GraphProto`` without initializers (``onnx.helper.make_graph``)."""
    out = b"".join(length_field(1, n) for n in nodes) + length_field(2, _text(name))
    out += b"".join(length_field(11, i) for i in inputs)
    return out + b"".join(length_field(12, o) for o in outputs)


def tensor_header(name: str, dims: Sequence[int], elem_type: int) -> bytes:
    """A ``TensorProto``'s dims, data type and name: what comes before its data."""
    out = b"".join(int_field(1, int(d)) for d in dims)
    return out + int_field(2, elem_type) + length_field(8, _text(name))


def external_data(location: str, offset: int, length: int) -> bytes:
    """A ``TensorProto``'s fields that put its data ``length`` bytes into ``location``."""
    entries = (("location", location), ("offset", str(offset)), ("length", str(length)))
    out = b"".join(
        length_field(13, length_field(1, _text(k)) + length_field(2, _text(v))) for k, v in entries
    )
    return out + int_field(14, 1)  # data_location: EXTERNAL


def model_header(
    opsets: Mapping[str, int],
    producer: str,
    *,
    producer_version: str = "",
    ir_version: int,
    doc_string: str = "",
    metadata: Mapping[str, str] | None = None,
) -> tuple[bytes, bytes]:
    """A ``ModelProto``'s fields before and after its graph (field 7)."""
    before = int_field(1, ir_version) + length_field(2, _text(producer))
    if producer_version:
        before += length_field(3, _text(producer_version))
    if doc_string:
        before += length_field(6, _text(doc_string))
    after = b"".join(
        length_field(8, length_field(1, _text(domain)) + int_field(2, version))
        for domain, version in opsets.items()
    )
    after += b"".join(
        length_field(14, length_field(1, _text(k)) + length_field(2, _text(v)))
        for k, v in (metadata or {}).items()
    )
    return before, after
