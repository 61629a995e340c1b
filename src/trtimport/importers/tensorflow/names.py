"""TensorFlow tensor names (``input:0``) versus the names the converted ONNX model uses.

Users may write a TensorFlow name with or without its ``:0`` output index. After conversion,
every name given with ``--input``/``--output`` that the ONNX model spells differently is renamed
in the ONNX model to the user's spelling, so the rest of the pipeline finds it unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnx


def spellings(name: str) -> list[str]:
    """The ways a TensorFlow tensor may be named: as given, with ``:0``, and without it."""
    base, sep, index = name.rpartition(":")
    if sep and base and index.isdigit():
        return [name, base] if index == "0" else [name]
    return [name, f"{name}:0"]


def value_names(model: onnx.ModelProto) -> set[str]:
    """Every tensor name in the main graph: inputs, initializers and node outputs."""
    graph = model.graph
    names = {v.name for v in graph.input} | {t.name for t in graph.initializer}
    for node in graph.node:
        names.update(node.output)
    return names


def resolve(name: str, available: Iterable[str]) -> str | None:
    """The spelling of ``name`` that ``available`` has, or None."""
    have = set(available)
    return next((s for s in spellings(name) if s in have), None)


def rename_value(model: onnx.ModelProto, old: str, new: str) -> None:
    """Rename tensor ``old`` to ``new`` everywhere in the main graph."""
    graph = model.graph
    for node in graph.node:
        node.input[:] = [new if n == old else n for n in node.input]
        node.output[:] = [new if n == old else n for n in node.output]
    for collection in (graph.input, graph.output, graph.value_info, graph.initializer):
        for item in collection:
            if item.name == old:
                item.name = new


def apply_user_names(model: onnx.ModelProto, requested: Iterable[str]) -> None:
    """Rename tensors so each requested name (in the user's spelling) exists in ``model``."""
    have = value_names(model)
    for name in requested:
        if name in have:
            continue
        found = resolve(name, have)
        if found is not None:
            rename_value(model, found, name)
            have = (have - {found}) | {name}
