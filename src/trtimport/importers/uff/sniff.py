"""Tell UFF files from others by their first bytes, without the protobuf stubs.

A UFF file is a serialized ``MetaGraph``: the format version (field 1, a varint), the core
descriptor version (field 2), then descriptors (field 3: messages whose field 1 is an id such as
``tensorflow_extension``) and graphs (field 4: messages whose field 1 is an id such as ``main``
and whose field 2 holds the nodes). Serializers write fields in number order, so the head shows
them in that order. ONNX, GraphDef and caffemodel files start with other fields or wire types.
"""

from __future__ import annotations

import re

from trtimport.onnxtools.protowire import LEN, VARINT, WireError, head_field

_META_VERSION, _META_CORE_VERSION, _META_DESCRIPTOR, _META_GRAPH = 1, 2, 3, 4
_ID = re.compile(rb"[A-Za-z_][A-Za-z0-9_.\-]*")
#: Descriptor versions and the format version are small numbers.
_MAX_VERSION = 1 << 16


def looks_like_uff(head: bytes) -> bool:
    """Whether ``head`` starts like a serialized UFF ``MetaGraph``."""
    buf = memoryview(head)
    pos = 0
    seen_container = False
    last = 0
    try:
        while pos < len(buf):
            number, wire, value, end = head_field(buf, pos)
            if number < last:
                return False
            last = number
            if number in (_META_VERSION, _META_CORE_VERSION):
                if wire != VARINT or value > _MAX_VERSION:
                    return False
            elif number in (_META_DESCRIPTOR, _META_GRAPH) and wire == LEN:
                if not _starts_with_id(buf[value : min(end, len(buf))]):
                    return False
                seen_container = True
                if end >= len(buf):
                    break
            else:
                break
            pos = end
    except WireError:
        return False
    return seen_container


def _starts_with_id(payload: memoryview) -> bool:
    """A descriptor or graph message starts with its id: a short identifier string."""
    try:
        number, wire, value, end = head_field(payload, 0)
    except WireError:
        return False
    if number != 1 or wire != LEN or end > len(payload):
        return False
    return _ID.fullmatch(bytes(payload[value:end])) is not None
