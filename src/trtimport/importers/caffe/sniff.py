"""Tell Caffe files from others by their first bytes, without numpy or the protobuf stubs.

Every model goes through format detection, so this module stays light: plain Python over the
wire-format reader of :mod:`~trtimport.onnxtools.protowire`.
"""

from __future__ import annotations

import re
from pathlib import Path

from trtimport.importers.caffe.wire import NET_LAYER, NET_LAYERS
from trtimport.onnxtools.protowire import LEN, VARINT, WireError, head_field

_PROTOTXT_LINE = re.compile(
    rb"^\s*(layers?\s*\{|input\s*:|input_dim\s*:|input_shape\s*\{)", re.MULTILINE
)
_NAME_LINE = re.compile(rb'^\s*name\s*:\s*["\']', re.MULTILINE)


def detect_caffe(path: Path, head: bytes) -> str | None:
    """``"prototxt"``, ``"caffemodel"`` or None, judged from the file's first bytes."""
    if not head:
        return None
    if _is_text(head):
        if _PROTOTXT_LINE.search(head):
            return "prototxt"
        if _NAME_LINE.search(head) and Path(path).suffix.lower() == ".prototxt":
            return "prototxt"
        return None
    return "caffemodel" if _looks_like_net_parameter(head) else None


_CONTROL = re.compile(rb"[\x00-\x08\x0e-\x1f\x7f]")


def _is_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as err:
        # A multi-byte character cut by the end of the head is still text.
        if err.start < len(head) - 3:
            return False
    return _CONTROL.search(head) is None


_NET_HEADER_FIELDS = {(3, LEN), (4, VARINT), (4, LEN), (5, VARINT), (6, LEN), (7, VARINT), (8, LEN)}


def _looks_like_net_parameter(head: bytes) -> bool:
    """Whether ``head`` starts like a serialized NetParameter holding layers."""
    buf = memoryview(head)
    pos = 0
    try:
        while pos < len(buf):
            number, wire, value, end = head_field(buf, pos)
            if number in (NET_LAYER, NET_LAYERS) and wire == LEN:
                return _looks_like_layer(buf[: min(end, len(buf))], value)
            if number == 1 and wire == LEN:
                if not _is_printable(bytes(buf[value:end])):
                    return False
            elif (number, wire) not in _NET_HEADER_FIELDS:
                return False
            pos = end
    except WireError:
        return False
    return False


def _looks_like_layer(buf: memoryview, start: int) -> bool:
    """A layer message starts with a printable string: its name (V2), or bottom/top/name (V1)."""
    try:
        number, wire, value, end = head_field(buf, start)
    except WireError:
        return False
    return wire == LEN and number in (1, 2, 3, 4) and _is_printable(bytes(buf[value:end]))


def _is_printable(data: bytes) -> bool:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return bool(text) and text.isprintable()
