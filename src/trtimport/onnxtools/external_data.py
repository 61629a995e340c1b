"""Find an ONNX file's external-data references by walking its protobuf wire format.

Reading the references with ``onnx.load`` parses (and copies) every weight; a 100 MB model costs
a tenth of a second that way. The walk below only visits the messages that can hold tensors
(graphs, nodes, attributes, functions, sparse tensors) and jumps over everything else,
including the weight bytes, so its cost does not grow with the size of the weights.
Field numbers are those of ``onnx/onnx.proto``.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterator
from pathlib import Path

from trtimport.onnxtools.protowire import LEN, VARINT, WireError, iter_fields

#: Message kind -> {field number: kind of the embedded message}.
_CHILDREN: dict[str, dict[int, str]] = {
    "model": {7: "graph", 25: "function"},
    "function": {7: "node"},
    "graph": {1: "node", 5: "tensor", 15: "sparse"},
    "sparse": {1: "tensor", 2: "tensor"},
    "node": {5: "attribute"},
    "attribute": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse"},
}
_TENSOR_NAME, _TENSOR_EXTERNAL_DATA, _TENSOR_DATA_LOCATION = 8, 13, 14
_LOCATION_EXTERNAL = 1


def _fields(buf: memoryview, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(field number, value or start, end) of each varint or length-delimited field; ``end``
    is -1 for varints. Raises :class:`~trtimport.onnxtools.protowire.WireError` for bad bytes."""
    for number, wire, value, _, field_end in iter_fields(buf, start, end):
        if wire == VARINT:
            yield number, value, -1
        elif wire == LEN:
            yield number, value, field_end


def _tensor_reference(buf: memoryview, start: int, end: int) -> tuple[str, str] | None:
    name, location, external = "", "", False
    for field, a, b in _fields(buf, start, end):
        if field == _TENSOR_NAME and b >= 0:
            name = bytes(buf[a:b]).decode(errors="replace")
        elif field == _TENSOR_DATA_LOCATION and b < 0:
            external = a == _LOCATION_EXTERNAL
        elif field == _TENSOR_EXTERNAL_DATA and b >= 0:
            entry = {f: bytes(buf[x:y]) for f, x, y in _fields(buf, a, b) if y >= 0}
            if entry.get(1) == b"location":
                location = entry.get(2, b"").decode(errors="replace")
    return (name, location) if external else None


def external_data_references(path: Path) -> list[tuple[str, str]] | None:
    """(tensor name, location) of every tensor stored outside ``path``; None if not readable."""
    if path.stat().st_size == 0:
        return None
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        buf = memoryview(mapped)
        try:
            found = []
            stack = [("model", 0, len(buf))]
            while stack:
                kind, start, end = stack.pop()
                if kind == "tensor":
                    reference = _tensor_reference(buf, start, end)
                    if reference is not None:
                        found.append(reference)
                    continue
                children = _CHILDREN[kind]
                for field, a, b in _fields(buf, start, end):
                    if b >= 0 and field in children:
                        stack.append((children[field], a, b))
            return found
        except WireError:
            return None
        finally:
            buf.release()
