"""Find an ONNX file's external-data references by walking its protobuf wire format.

Reading the references with ``onnx.load`` parses (and copies) every weight; a 100 MB model costs
a tenth of a second that way. The walk below only visits the messages that can hold tensors
(graphs, nodes, attributes, functions, sparse tensors) and jumps over everything else,
including the weight bytes, so its cost does not grow with the size of the weights.
Field numbers are those of ``onnx/onnx.proto``.

Also here: the check that every reference stays inside the model's folder, the one loader of
an ONNX file's initializers, which runs that check first, and :func:`load_model`: ``onnx.load``
with the external data read here, since ``onnx.load`` refuses data reached through a symbolic
link, as the Caffe importer's intermediate model reaches the caffemodel.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from trtimport.errors import ModelParseError
from trtimport.onnxtools.protowire import LEN, VARINT, WireError, iter_fields

if TYPE_CHECKING:
    import numpy as np
    import onnx

#: Message kind -> {field number: kind of the embedded message}.
CHILDREN: dict[str, dict[int, str]] = {
    "model": {7: "graph", 25: "function"},
    "function": {7: "node"},
    "graph": {1: "node", 5: "tensor", 15: "sparse"},
    "sparse": {1: "tensor", 2: "tensor"},
    "node": {5: "attribute"},
    "attribute": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse"},
}
TENSOR_NAME, TENSOR_EXTERNAL_DATA, TENSOR_DATA_LOCATION = 8, 13, 14
LOCATION_EXTERNAL = 1


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
        if field == TENSOR_NAME and b >= 0:
            name = bytes(buf[a:b]).decode(errors="replace")
        elif field == TENSOR_DATA_LOCATION and b < 0:
            external = a == LOCATION_EXTERNAL
        elif field == TENSOR_EXTERNAL_DATA and b >= 0:
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
                children = CHILDREN[kind]
                for field, a, b in _fields(buf, start, end):
                    if b >= 0 and field in children:
                        stack.append((children[field], a, b))
            return found
        except WireError:
            return None
        finally:
            buf.release()


def tensors_of_graph(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    """Every tensor a graph holds: initializers, sparse values, node attributes, subgraphs."""
    yield from graph.initializer
    yield from (s.values for s in graph.sparse_initializer)
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("g"):
                yield from tensors_of_graph(attr.g)
            for sub in attr.graphs:
                yield from tensors_of_graph(sub)


def _references_via_onnx(path: Path) -> list[tuple[str, str]]:
    """The slow, thorough way (when the quick walk cannot read the file)."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as err:
        raise ModelParseError(
            f"{path}: not a valid ONNX model ({err}). The file may be truncated or corrupt; "
            "export it again."
        ) from err
    found = []
    tensors = [tensors_of_graph(model.graph)]
    # Local functions hold nodes too (a Constant's tensor, a subgraph's initializers).
    tensors += [tensors_of_graph(onnx.GraphProto(node=f.node)) for f in model.functions]
    for tensor in (t for group in tensors for t in group):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            entries = {e.key: e.value for e in tensor.external_data}
            found.append((tensor.name, entries.get("location", "")))
    return found


def check_external_data(path: Path) -> None:
    """Refuse external-data references that leave the model's folder or point nowhere."""
    references = external_data_references(path)
    if references is None:
        references = _references_via_onnx(path)
    if not references:
        return
    # The parser looks for external data beside the path it is given, so confine to that folder
    # (resolved, so that a symlinked data file pointing elsewhere is caught too).
    folder = path.absolute().parent.resolve()
    problems = []
    for name, location in references:
        if not location or "\0" in location:
            problems.append(f"tensor '{name}': external data location {location!r} is not a path")
            continue
        if os.path.isabs(location):
            problems.append(
                f"tensor '{name}': external data '{location}' is outside the model's "
                f"folder {folder}"
            )
            continue
        try:
            target = (folder / location).resolve()
        except (OSError, RuntimeError) as err:  # a symlink loop
            problems.append(f"tensor '{name}': external data '{location}': {err}")
            continue
        if not target.is_relative_to(folder):
            problems.append(
                f"tensor '{name}': external data '{location}' is outside the model's "
                f"folder {folder}"
            )
        elif not target.is_file():
            problems.append(f"tensor '{name}': external data file '{location}' is missing")
    if problems:
        raise ModelParseError(
            f"{path}: external data must be files inside the model's folder; move them next "
            "to the model",
            problems,
        )


def load_initializers(path: Path, *, checked: bool = False) -> dict[str, np.ndarray]:
    """Every initializer of an ONNX model as arrays (external data only from its own folder).

    ``checked=True`` skips the folder check, for the files trtimport wrote itself (a Caffe
    model's intermediate ONNX links the caffemodel, which lies elsewhere).
    """
    from onnx import numpy_helper

    if not checked:
        check_external_data(path)
    try:
        model = load_model(path)
    except Exception as err:
        raise ModelParseError(f"{path}: not a valid ONNX model ({err})") from err
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def load_model(path: Path, *, keep_external_from: int | None = None) -> onnx.ModelProto:
    """``onnx.load`` with the external data read here, in the model's folder or below it.

    A location may be a symbolic link (the intermediate ONNX of a Caffe model links the
    caffemodel), which ``onnx.load`` refuses; one that leaves the folder is an error. Tensors
    of ``keep_external_from`` bytes or more stay where they are (for rewrites that do not touch
    weights; :func:`link_external_data` makes them reachable from where the model is saved).
    """
    import onnx

    path = Path(path)
    model = onnx.load(str(path), load_external_data=False)
    folder = path.absolute().parent
    for tensor in tensors_of_graph(model.graph):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location, offset, length = _external_entry(path, tensor)
        with (folder / location).open("rb") as f:
            size = os.fstat(f.fileno()).st_size - offset if length is None else length
            if keep_external_from is not None and size >= keep_external_from:
                continue
            f.seek(offset)
            tensor.raw_data = f.read(size)
        del tensor.external_data[:]
        tensor.data_location = onnx.TensorProto.DEFAULT
    return model


def _external_entry(path: Path, tensor: onnx.TensorProto) -> tuple[str, int, int | None]:
    """(location, offset, length or None) of an external tensor, its location checked."""
    entry = {e.key: e.value for e in tensor.external_data}
    location = entry.get("location", "")
    if not location or os.path.isabs(location) or ".." in Path(location).parts:
        raise ModelParseError(
            f"{path}: tensor '{tensor.name}': external data '{location}' is outside the "
            "model's folder"
        )
    length = entry.get("length")
    return location, int(entry.get("offset", "0")), None if length is None else int(length)


def link_external_data(model: onnx.ModelProto, source: Path, folder: Path) -> None:
    """Link the external data files ``model`` (loaded from ``source``) still refers to into
    ``folder``, where the model will be saved, so that the same locations reach them."""
    import onnx

    locations = {
        _external_entry(source, t)[0]
        for t in tensors_of_graph(model.graph)
        if t.data_location == onnx.TensorProto.EXTERNAL
    }
    for location in sorted(locations):
        link = folder / location
        if not os.path.lexists(link):
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to((source.absolute().parent / location).resolve())
