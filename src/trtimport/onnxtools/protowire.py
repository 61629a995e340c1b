"""The protobuf wire format in plain Python: varints and fields over a byte buffer.

Both the caffemodel reader (zero-copy views of the weights) and the ONNX external-data check
walk serialized messages without the generated stubs; this is the reader they share. It imports
nothing heavy, so format detection can use it on every run.
"""

from __future__ import annotations

from collections.abc import Iterator

# Wire types.
VARINT, I64, LEN, I32 = 0, 1, 2, 5


class WireError(Exception):
    """The bytes are not a well-formed protobuf message (offset into the file)."""

    def __init__(self, offset: int, what: str) -> None:
        super().__init__(f"at byte {offset}: {what}")
        self.offset = offset


def read_varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    """Decode one base-128 varint at ``pos``; returns (value, position after it)."""
    result = 0
    shift = 0
    start = pos
    while True:
        if pos >= end:
            raise WireError(start, "the data ends inside a number (the file is truncated)")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise WireError(start, "a number is longer than 10 bytes")


def next_field(buf: memoryview, pos: int, end: int) -> tuple[int, int, int, int]:
    """Decode the field at ``pos``: ``(field_number, wire_type, value, field_end)``.

    ``value`` is the integer for varints, and the payload start for the other wire types (the
    payload is ``[value, field_end)``).
    """
    key, at = read_varint(buf, pos, end)
    number, wire = key >> 3, key & 7
    if number == 0:
        raise WireError(pos, "field number 0 (not a protobuf message)")
    if wire == VARINT:
        value, at = read_varint(buf, at, end)
        return number, wire, value, at
    if wire == LEN:
        length, at = read_varint(buf, at, end)
        payload_end = at + length
    elif wire == I32:
        payload_end = at + 4
    elif wire == I64:
        payload_end = at + 8
    else:
        raise WireError(pos, f"unsupported wire type {wire} for field {number}")
    if payload_end > end:
        raise WireError(
            pos,
            f"field {number} needs {payload_end - at} bytes but only {end - at} remain "
            "(the file is truncated)",
        )
    return number, wire, at, payload_end


def head_field(buf: memoryview, pos: int) -> tuple[int, int, int, int]:
    """Like :func:`next_field` on a file's first bytes: a length-delimited payload that runs
    past the end of ``buf`` is accepted (its end lies beyond ``len(buf)``)."""
    key, at = read_varint(buf, pos, len(buf))
    if key & 7 == LEN:
        length, at = read_varint(buf, at, len(buf))
        return key >> 3, LEN, at, at + length
    return next_field(buf, pos, len(buf))


def iter_fields(buf: memoryview, start: int, end: int) -> Iterator[tuple[int, int, int, int, int]]:
    """Yield ``(field_number, wire_type, value, field_start, field_end)`` for each field."""
    pos = start
    while pos < end:
        number, wire, value, field_end = next_field(buf, pos, end)
        yield number, wire, value, pos, field_end
        pos = field_end


def split_at_field(message: bytes, number: int) -> tuple[bytes, bytes]:
    """A serialized message cut before its first field numbered above ``number``.

    Serializers emit fields in number order, so inserting fields numbered ``number`` between
    the two parts gives the same bytes as serializing the message with them.
    """
    view = memoryview(message)
    for field_number, _, _, start, _ in iter_fields(view, 0, len(message)):
        if field_number > number:
            return message[:start], message[start:]
    return message, b""


def encode_varint(value: int) -> bytes:
    """The base-128 varint encoding of a non-negative integer."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)
