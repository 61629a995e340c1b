"""Building and rewriting ONNX graphs: the one graph builder, and helpers the rewrites share.

:class:`GraphBuilder` collects nodes, numpy constants, inputs and outputs with unique generated
names; the Caffe importer builds its graph with it and the network exporter
(:class:`~trtimport.export.graph.GraphWriter`) extends it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from trtimport.onnxtools import encode

if TYPE_CHECKING:
    import onnx


#: A static tensor shape.
Shape = tuple[int, ...]

#: Protobuf's limit for one serialized message; bigger models keep their weights beside them.
TWO_GIB = 2**31 - 1


def serialized_size(model: onnx.ModelProto) -> int:
    """About how many bytes ``model`` serializes to, measured without serializing it whole.

    A message of 2 GiB or more cannot be serialized, nor measured in one piece; the size is the
    sum of the graph's initializers and nodes (which hold the tensors), each far smaller.
    """
    graph = model.graph
    return sum(t.ByteSize() for t in graph.initializer) + sum(n.ByteSize() for n in graph.node)


def save_model(model: onnx.ModelProto, path: Path) -> None:
    """Save ``model`` at ``path`` atomically, with its weights in ``<name>.data`` beside it when
    the model is too big for one protobuf message (the tensors of ``model`` then refer there)."""
    import os

    import onnx

    from trtimport.core.files import atomic_path

    if serialized_size(model) < TWO_GIB - (1 << 24):
        with atomic_path(path) as tmp:
            onnx.save(model, str(tmp))
        return
    data = path.with_name(f"{path.name}.data")
    with atomic_path(data) as tmp_data, atomic_path(path) as tmp:
        onnx.save(model, str(tmp), save_as_external_data=True, location=data.name)
        os.replace(tmp.with_name(data.name), tmp_data)


def save_model_with_data(model: onnx.ModelProto, data: dict[str, bytes], path: Path) -> None:
    """Save ``model`` at ``path``, the bytes of its external tensors in ``<name>.data`` beside it.

    ``data`` holds those bytes by the location each tensor names (tf2onnx's large-model form:
    a location and no offset). Each entry is written and then dropped from ``data``, so the
    weights are never held twice; a tensor whose entry is empty keeps its data in the model
    (tf2onnx moves out only ``raw_data``). Offsets are aligned for memory mapping, and the
    locations become ``<name>.data`` with an offset and a length.
    """
    import onnx

    from trtimport.core.files import atomic_path
    from trtimport.errors import ModelParseError
    from trtimport.onnxtools.external_data import tensors_of_graph
    from trtimport.onnxtools.standalone import ALIGNMENT

    data_path = path.with_name(f"{path.name}.data")
    placed: dict[str, tuple[int, int]] = {}
    with atomic_path(data_path) as tmp_data, atomic_path(path) as tmp:
        with tmp_data.open("wb") as out:
            for tensor in tensors_of_graph(model.graph):
                if tensor.data_location != onnx.TensorProto.EXTERNAL:
                    continue
                location = {e.key: e.value for e in tensor.external_data}.get("location", "")
                if location not in placed:
                    if location not in data:
                        raise ModelParseError(
                            f"{path}: tensor '{tensor.name}' is stored externally at "
                            f"{location!r}, but the converter gave no data for it"
                        )
                    blob = data.pop(location)
                    out.write(b"\0" * (-out.tell() % ALIGNMENT))
                    placed[location] = (out.tell(), len(blob))
                    out.write(blob)
                    del blob
                offset, length = placed[location]
                del tensor.external_data[:]
                if not length:
                    tensor.data_location = onnx.TensorProto.DEFAULT
                    continue
                for key, value in (
                    ("location", data_path.name),
                    ("offset", offset),
                    ("length", length),
                ):
                    tensor.external_data.add(key=key, value=str(value))
        onnx.save(model, str(tmp))


def opset_of(model: onnx.ModelProto) -> int:
    """The model's default-domain opset."""
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)


def subgraphs(node: onnx.NodeProto) -> Iterator[onnx.GraphProto]:
    """The subgraphs a node holds (If branches, Loop/Scan bodies)."""
    for attr in node.attribute:
        if attr.HasField("g"):
            yield attr.g
        yield from attr.graphs


def _defined(graph: onnx.GraphProto) -> set[str]:
    names = {i.name for i in graph.input} | {t.name for t in graph.initializer}
    return names | {o for n in graph.node for o in n.output}


def outer_names(graph: onnx.GraphProto) -> set[str]:
    """Names a (sub)graph reads from enclosing scopes."""
    used: set[str] = set()
    for node in graph.node:
        used.update(node.input)
        for sub in subgraphs(node):
            used |= outer_names(sub)
    used.update(o.name for o in graph.output)
    return used - _defined(graph) - {""}


def rename_outer(graph: onnx.GraphProto, mapping: Mapping[str, str]) -> None:
    """Make a subgraph read ``mapping[name]`` wherever it reads ``name`` from outside."""
    local = {k: v for k, v in mapping.items() if k not in _defined(graph)}
    if not local:
        return
    for node in graph.node:
        for j, name in enumerate(node.input):
            if name in local:
                node.input[j] = local[name]
        for sub in subgraphs(node):
            rename_outer(sub, local)


def referenced_names(graph: onnx.GraphProto) -> set[str]:
    """Every name the graph's nodes (and their subgraphs) or outputs read."""
    used = {o.name for o in graph.output}
    for node in graph.node:
        used.update(node.input)
        for sub in subgraphs(node):
            used |= outer_names(sub)
    return used


def unique_namer(graph: onnx.GraphProto) -> Callable[[str], str]:
    """A function that returns names not yet used by any tensor or node of ``graph``."""
    used: set[str] = set()
    pending = [graph]
    while pending:
        g = pending.pop()
        used |= {v for n in g.node for v in (*n.input, *n.output, n.name)}
        used |= {t.name for t in g.initializer} | {i.name for i in g.input}
        pending.extend(sub for n in g.node for sub in subgraphs(n))

    return lambda base: unique_name(base, used)


def unique_name(base: str, used: set[str]) -> str:
    """``base``, or ``base_2``, ``base_3``… : the first not in ``used``, which it is added to."""
    name, k = base, 1
    while name in used:
        k += 1
        name = f"{base}_{k}"
    used.add(name)
    return name


def drop_unused_initializers(graph: onnx.GraphProto) -> None:
    """Remove initializers nothing reads (graph inputs with defaults stay)."""
    used = referenced_names(graph) | {i.name for i in graph.input}
    for i in reversed(range(len(graph.initializer))):
        if graph.initializer[i].name not in used:
            del graph.initializer[i]


class GraphBuilder:
    """Collects the nodes, initializers, inputs and outputs of one ONNX graph.

    Names the caller gives (Caffe blob and layer names, TensorRT tensor names) are claimed
    first; helper tensors and nodes get names derived from a hint (``conv1/W``) that never
    collide with them: the hint itself if free, else ``hint_2``, ``hint_3``…
    """

    def __init__(
        self, reserved_tensors: Iterable[str] = (), reserved_nodes: Iterable[str] = ()
    ) -> None:
        #: ``NodeProto`` bytes (:meth:`make_node`); the network exporter keeps messages.
        self.nodes: list[Any] = []
        self.initializers: dict[str, np.ndarray] = {}
        self.inputs: list[bytes] = []
        self.outputs: list[bytes] = []
        self._tensor_names: set[str] = set(reserved_tensors)
        self._node_names: set[str] = set(reserved_nodes)

    def fresh(self, hint: str) -> str:
        """A tensor name not used yet, ``hint`` itself if free."""
        return unique_name(hint, self._tensor_names)

    def fresh_node(self, hint: str) -> str:
        """A node name not used yet, ``hint`` itself if free."""
        return unique_name(hint, self._node_names)

    def claim(self, name: str) -> None:
        """Mark a tensor name as used (names from the source model are claimed by the caller)."""
        self._tensor_names.add(name)

    def const(self, value: Any, hint: str) -> str:
        """Add a constant as an initializer; float64 becomes float32, Python ints int64."""
        array = np.asarray(value)
        if array.dtype == np.float64:
            array = array.astype(np.float32)
        elif array.dtype.kind in "iu" and array.dtype != np.int32:
            array = array.astype(np.int64)
        name = self.fresh(hint)
        self.initializers[name] = array
        return name

    def ints(self, values: Any, hint: str) -> str:
        """A 1-D int64 constant (shapes, axes, pads)."""
        return self.const(np.asarray(values, dtype=np.int64).reshape(-1), hint)

    def node(
        self,
        op: str,
        inputs: Sequence[str | None],
        outputs: Sequence[str] | int = 1,
        *,
        name: str,
        **attrs: Any,
    ) -> list[str]:
        """Append a node; returns its outputs.

        ``outputs`` is a list of names or how many fresh names to make; a None input is an
        omitted optional input; ``name`` is made unique; attributes set to None are left out.
        """
        if isinstance(outputs, int):
            outputs = [self.fresh(f"{name}/{op}_out{i}") for i in range(outputs)]
        else:
            for out in outputs:
                self.claim(out)
        ins = [i if i is not None else "" for i in inputs]
        while ins and ins[-1] == "":
            ins.pop()
        kept = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(self.make_node(op, ins, list(outputs), self.fresh_node(name), kept))
        return list(outputs)

    def make_node(
        self, op: str, inputs: list[str], outputs: list[str], name: str, attrs: dict[str, Any]
    ) -> Any:
        """One node as :attr:`nodes` keeps it: ``NodeProto`` bytes, encoded without ``onnx``
        (:mod:`trtimport.onnxtools.encode`; importing ``onnx`` costs more than converting a
        large Caffe model)."""
        return encode.node(op, inputs, outputs, name=name, **attrs)

    def add_input(self, name: str, shape: Shape, dtype: type = np.float32) -> None:
        """Declare a graph input."""
        self.claim(name)
        self.inputs.append(encode.value_info(name, encode.data_type(dtype), list(shape)))

    def add_output(self, name: str, shape: Shape | None, dtype: type = np.float32) -> None:
        """Declare a graph output (``shape`` None leaves it unknown)."""
        dims = None if shape is None else list(shape)
        self.outputs.append(encode.value_info(name, encode.data_type(dtype), dims))

    def graph(self, name: str) -> bytes:
        """The serialized ``GraphProto`` without its initializers (:attr:`initializers`; a
        writer streams them)."""
        return encode.graph(self.nodes, name, self.inputs, self.outputs)
