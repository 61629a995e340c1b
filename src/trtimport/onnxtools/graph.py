"""Small helpers shared by the ONNX graph rewrites."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnx


#: Protobuf's limit for one serialized message; bigger models keep their weights beside them.
TWO_GIB = 2**31 - 1


def save_model(model: onnx.ModelProto, path: Path) -> None:
    """Save ``model`` at ``path``, with external data beside it when it is too big for one file."""
    import onnx

    big = model.ByteSize() > TWO_GIB
    onnx.save(model, str(path), save_as_external_data=big, location=f"{path.name}.data")


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
