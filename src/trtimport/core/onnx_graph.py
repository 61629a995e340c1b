"""Small helpers shared by the ONNX graph rewrites."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnx


def unique_namer(graph: onnx.GraphProto) -> Callable[[str], str]:
    """A function that returns names not yet used by any tensor or node of ``graph``."""
    used = {v for n in graph.node for v in (*n.input, *n.output)}
    used |= {t.name for t in graph.initializer} | {i.name for i in graph.input}
    used |= {n.name for n in graph.node}

    def make(base: str) -> str:
        name, k = base, 1
        while name in used:
            k += 1
            name = f"{base}_{k}"
        used.add(name)
        return name

    return make


def drop_unused_initializers(graph: onnx.GraphProto) -> None:
    """Remove initializers no node or output reads (graph inputs with defaults stay)."""
    used = {n for node in graph.node for n in node.input} | {o.name for o in graph.output}
    used |= {i.name for i in graph.input}
    keep = [t for t in graph.initializer if t.name in used]
    if len(keep) != len(graph.initializer):
        del graph.initializer[:]
        graph.initializer.extend(keep)
