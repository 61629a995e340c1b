"""Walk a ``.uff`` file at the protobuf wire level, over a read-only mapping of it.

A UFF file is a serialized ``MetaGraph`` (``proto/uff_schema.proto``); almost all of its bytes
are the ``blob`` payloads of ``Data`` messages: the weights, in the ``referenced_data`` table
that Const nodes refer to. This module finds each message's place without decoding a copy of
any blob: a blob comes back as a ``memoryview`` of the mapping (numpy views of it can be
located back in the file: :func:`trtimport.onnxtools.mapped.file_region`). Every other
``Data`` message is small and is decoded by the generated stubs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trtimport.onnxtools.protowire import LEN, VARINT, iter_fields

# Field numbers of uff_schema.proto.
META_VERSION, META_DESCRIPTORS, META_GRAPHS, META_REFERENCED = 1, 3, 4, 5
GRAPH_ID, GRAPH_NODES = 1, 2
NODE_ID, NODE_INPUTS, NODE_OPERATION, NODE_FIELDS = 1, 2, 3, 4
KEYED_KEY, KEYED_VALUE = 1, 2
DESCRIPTOR_ID = 1
DATA_BLOB = 9

#: A ``Data`` value: a decoded ``Data`` message, or the bytes of a blob (a view of the file).
DataValue = Any


class CorruptError(Exception):
    """The bytes are not the UFF schema's message (what and where, for the error message)."""


@dataclass
class WireNode:
    """A ``Node`` message: its strings, and its fields as ``(key, Data)`` in file order."""

    name: str = ""
    op: str = ""
    inputs: list[str] = field(default_factory=list)
    fields: list[tuple[str, DataValue]] = field(default_factory=list)


@dataclass
class WireMeta:
    """What the converter needs of a ``MetaGraph``."""

    version: int = 0
    descriptors: list[str] = field(default_factory=list)
    #: The first graph's id and nodes; None when the file holds no graph.
    graph: str | None = None
    nodes: list[WireNode] = field(default_factory=list)
    #: ``referenced_data`` by key (the last entry of a key wins, as in a protobuf map).
    table: dict[str, DataValue] = field(default_factory=dict)


def _expect(wire: int, wanted: int, what: str, at: int) -> None:
    if wire != wanted:
        raise CorruptError(f"{what} at byte {at} has wire type {wire}, not {wanted}")


def _text(buf: memoryview, start: int, end: int, what: str) -> str:
    try:
        return str(bytes(buf[start:end]), "utf-8")
    except UnicodeDecodeError as err:
        raise CorruptError(f"{what} at byte {start} is not UTF-8 text") from err


def read_data(buf: memoryview, start: int, end: int) -> DataValue:
    """One ``Data`` message: a blob's bytes as a view of ``buf``, anything else decoded.

    ``Data`` is a ``oneof``: the last field in the message is the one that holds.
    """
    last = None
    for number, wire, value, _, field_end in iter_fields(buf, start, end):
        last = (number, wire, value, field_end)
    if last is not None and last[0] == DATA_BLOB and last[1] == LEN:
        return buf[last[2] : last[3]]
    from google.protobuf.message import DecodeError

    from trtimport.importers.uff.proto import uff_schema_pb2

    try:
        return uff_schema_pb2.Data.FromString(bytes(buf[start:end]))
    except DecodeError as err:
        raise CorruptError(f"a value at byte {start} does not decode ({err})") from err


def _keyed(buf: memoryview, start: int, end: int) -> tuple[str, DataValue]:
    """A ``KeyedData`` message: its key and its value."""
    key = ""
    value: DataValue = None
    for number, wire, at, field_start, field_end in iter_fields(buf, start, end):
        if number == KEYED_KEY:
            _expect(wire, LEN, "a key", field_start)
            key = _text(buf, at, field_end, "a key")
        elif number == KEYED_VALUE:
            _expect(wire, LEN, "a value", field_start)
            value = read_data(buf, at, field_end)
    return key, value


def _node(buf: memoryview, start: int, end: int) -> WireNode:
    node = WireNode()
    for number, wire, at, field_start, field_end in iter_fields(buf, start, end):
        if number in (NODE_ID, NODE_INPUTS, NODE_OPERATION):
            _expect(wire, LEN, "a node's name, input or operation", field_start)
            text = _text(buf, at, field_end, "a node's name, input or operation")
            if number == NODE_ID:
                node.name = text
            elif number == NODE_OPERATION:
                node.op = text
            else:
                node.inputs.append(text)
        elif number == NODE_FIELDS:
            _expect(wire, LEN, "a node field", field_start)
            node.fields.append(_keyed(buf, at, field_end))
    return node


def _graph(buf: memoryview, start: int, end: int, meta: WireMeta) -> None:
    meta.graph = ""
    for number, wire, at, field_start, field_end in iter_fields(buf, start, end):
        if number == GRAPH_ID:
            _expect(wire, LEN, "a graph id", field_start)
            meta.graph = _text(buf, at, field_end, "a graph id")
        elif number == GRAPH_NODES:
            _expect(wire, LEN, "a node", field_start)
            meta.nodes.append(_node(buf, at, field_end))


def walk_meta(buf: memoryview) -> WireMeta:
    """Walk a whole ``MetaGraph``; raises ``protowire.WireError`` or :class:`CorruptError`."""
    meta = WireMeta()
    for number, wire, value, start, field_end in iter_fields(buf, 0, len(buf)):
        if number == META_VERSION:
            _expect(wire, VARINT, "the format version", start)
            meta.version = value
        elif number == META_DESCRIPTORS:
            _expect(wire, LEN, "a descriptor", start)
            for sub, sub_wire, sub_at, _, sub_end in iter_fields(buf, value, field_end):
                if sub == DESCRIPTOR_ID and sub_wire == LEN:
                    meta.descriptors.append(_text(buf, sub_at, sub_end, "a descriptor id"))
        elif number == META_GRAPHS:
            _expect(wire, LEN, "a graph", start)
            if meta.graph is None:  # the main graph is the first
                _graph(buf, value, field_end, meta)
            else:
                for _ in iter_fields(buf, value, field_end):
                    pass  # other graphs are checked for being well formed, not read
        elif number == META_REFERENCED:
            _expect(wire, LEN, "a referenced value", start)
            key, data = _keyed(buf, value, field_end)
            meta.table[key] = data
    return meta
