"""TensorRT loops (``ILoop``) -> ONNX ``Loop`` nodes with a body subgraph.

TensorRT marks only a loop's boundary layers (trip limit, iterators, recurrences, loop outputs)
with their ``loop``; the body is every other layer that depends on an iterator's or a
recurrence's output. Those layers are converted like any other layer; their nodes then move
into the body of one ``Loop`` (named after the trip limit layer):

- a COUNT trip limit is the ``Loop``'s trip count (WHILE limits are refused);
- an iterator gathers slice ``i`` (or ``n-1-i`` reversed) of the outer tensor along its axis;
- a recurrence is a loop-carried value (the body returns its next value);
- a CONCATENATE/REVERSE loop output is a scan output (new axis 0 moved to the layer's axis,
  reversed first for REVERSE); LAST_VALUE is a recurrence's final value or a scan output's
  last slice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from trtimport.errors import UnsupportedLayerError
from trtimport.export.graph import topological
from trtimport.export.layers.common import INT64_MIN, Converters, inp, out, unsupported

if TYPE_CHECKING:
    import onnx

    from trtimport.export.graph import GraphWriter

CONVERTERS = Converters()
converts = CONVERTERS.converts

BOUNDARY = ("TRIP_LIMIT", "ITERATOR", "RECURRENCE", "LOOP_OUTPUT")


@dataclass
class LoopParts:
    """One TensorRT loop: its boundary layers and the indices of its body layers."""

    name: str
    trips: list[Any] = field(default_factory=list)
    iterators: list[Any] = field(default_factory=list)
    recurrences: list[Any] = field(default_factory=list)
    outputs: list[Any] = field(default_factory=list)
    body: list[int] = field(default_factory=list)
    #: Tensors computed inside the loop.
    internal: set[str] = field(default_factory=set)


def find_loops(typed: Sequence[tuple[str, Any]]) -> dict[str, LoopParts]:
    """Loop name -> its parts; body layers are those fed (transitively) by its iterators or
    recurrences."""
    loops: dict[str, LoopParts] = {}
    internal: dict[str, str] = {}  # tensor name -> loop name
    for kind, layer in typed:
        if kind not in BOUNDARY:
            continue
        parts = loops.setdefault(str(layer.loop.name), LoopParts(str(layer.loop.name)))
        if kind == "TRIP_LIMIT":
            parts.trips.append(layer)
        elif kind == "LOOP_OUTPUT":
            parts.outputs.append(layer)
        else:
            (parts.iterators if kind == "ITERATOR" else parts.recurrences).append(layer)
            internal[out(layer)] = parts.name
    assigned: set[int] = set()
    changed = True
    while changed:  # layers are not always in dependency order
        changed = False
        for i, (kind, layer) in enumerate(typed):
            if kind in BOUNDARY or i in assigned:
                continue
            owners = {
                internal[n] for j in range(layer.num_inputs) if (n := inp(layer, j)) in internal
            }
            if not owners:
                continue
            if len(owners) > 1:
                raise UnsupportedLayerError(f"layer '{layer.name}' reads from two loops")
            (owner,) = owners
            loops[owner].body.append(i)
            assigned.add(i)
            changed = True
            for j in range(layer.num_outputs):
                internal[out(layer, j)] = owner
    for tensor, owner in internal.items():
        loops[owner].internal.add(tensor)
    return loops


@converts("TRIP_LIMIT", "RECURRENCE", "LOOP_OUTPUT")
def loop_boundary(g: GraphWriter, layer: Any) -> None:
    """Trip limits, recurrences and loop outputs are assembled into the Loop afterwards."""


def iteration(g: GraphWriter, loop_name: str) -> str:
    """The body's iteration-number tensor of loop ``loop_name``."""
    if loop_name not in g.loop_iters:
        g.loop_iters[loop_name] = g.fresh(f"{loop_name}/iteration")
    return g.loop_iters[loop_name]


@converts("ITERATOR")
def iterator(g: GraphWriter, layer: Any) -> None:
    """IIteratorLayer -> Gather of slice i (n-1-i when reversed) along the axis (in the body)."""
    name, axis = layer.name, int(layer.axis)
    index = iteration(g, str(layer.loop.name))
    if layer.reverse:
        (shape,) = g.node("Shape", [inp(layer, 0)], 1, name=f"{name}/shape")
        (n,) = g.node("Gather", [shape, g.ints(axis, f"{name}/axis")], 1, name=f"{name}/n")
        (last,) = g.node("Sub", [n, g.ints(1, f"{name}/one")], 1, name=f"{name}/last")
        (index,) = g.node("Sub", [last, index], 1, name=f"{name}/index")
        (index,) = g.node("Squeeze", [index], 1, name=f"{name}/scalar")
    g.node("Gather", [inp(layer, 0), index], [out(layer)], name=name, axis=axis)


def assemble_loops(
    g: GraphWriter, typed: Sequence[tuple[str, Any]], spans: dict[int, tuple[int, int]]
) -> list[str]:
    """Move every loop's body nodes into a Loop node in ``g.nodes``; returns refusals."""
    loops = find_loops(typed)
    refused: list[str] = []
    moved: set[int] = set()
    new_nodes: list[onnx.NodeProto] = []
    for parts in loops.values():
        try:
            body_ids = [
                k
                for i in [*parts.body, *(_index(typed, it) for it in parts.iterators)]
                for k in range(*spans.get(i, (0, 0)))
            ]
            new_nodes += _loop_node(g, parts, [g.nodes[k] for k in body_ids])
            moved.update(body_ids)
        except UnsupportedLayerError as err:
            refused.append(str(err))
    g.nodes = [n for k, n in enumerate(g.nodes) if k not in moved] + new_nodes
    return refused


def _index(typed: Sequence[tuple[str, Any]], layer: Any) -> int:
    return next(i for i, (_, other) in enumerate(typed) if other.name == layer.name)


def _loop_node(
    g: GraphWriter, parts: LoopParts, body: list[onnx.NodeProto]
) -> list[onnx.NodeProto]:
    """The Loop node and its output adapters for ``parts`` (body nodes already converted)."""
    helper = g.onnx.helper
    tp = g.onnx.TensorProto
    counts = [t for t in parts.trips if t.kind.name == "COUNT"]
    whiles = [t for t in parts.trips if t.kind.name == "WHILE"]
    if not parts.trips or len(counts) > 1 or len(whiles) > 1:
        raise unsupported(f"loop '{parts.name}' needs one COUNT and/or one WHILE trip limit")
    # A WHILE condition is tested before each iteration; ONNX Loop takes the first test as an
    # input and the next ones from the body: fine when the condition is a recurrence's value
    # (the parser's form) or computed outside the loop.
    cond, cond_next = "", ""
    if whiles:
        cond = cond_next = str(inp(whiles[0], 0))
        carried = {out(r): r for r in parts.recurrences}
        if cond in carried:
            cond, cond_next = str(inp(carried[cond], 0)), str(inp(carried[cond], 1))
        elif cond in parts.internal:
            raise unsupported(
                f"TRIP_LIMIT layer '{whiles[0].name}': its WHILE condition is computed inside "
                "the loop from more than one recurrence's value"
            )
    start = len(g.nodes)
    name = str(parts.trips[0].name)
    count = g.cast(str(inp(counts[0], 0)), tp.INT64, f"{name}/count") if counts else ""
    iter_num = iteration(g, parts.name)
    cond_in, cond_out = g.fresh(f"{name}/cond_in"), g.fresh(f"{name}/cond_out")
    body_inputs = [
        helper.make_tensor_value_info(iter_num, tp.INT64, []),
        helper.make_tensor_value_info(cond_in, tp.BOOL, []),
    ]
    body = list(body)
    body.append(
        helper.make_node("Identity", [cond_next or cond_in], [cond_out], name=f"{name}/cond")
    )
    body_outputs = [helper.make_tensor_value_info(cond_out, tp.BOOL, [])]
    loop_inputs = [count, cond]
    loop_outputs: list[str] = []
    finals: dict[str, str] = {}  # recurrence output -> the Loop's final value
    for rec in parts.recurrences:
        dtype = g.onnx_dtype(rec.get_output(0).dtype)
        body_inputs.append(helper.make_tensor_value_info(out(rec), dtype, None))
        nxt = g.fresh(f"{rec.name}/next")
        body.append(helper.make_node("Identity", [inp(rec, 1)], [nxt], name=rec.name))
        body_outputs.append(helper.make_tensor_value_info(nxt, dtype, None))
        loop_inputs.append(str(inp(rec, 0)))
        finals[out(rec)] = g.fresh(f"{rec.name}/final")
        loop_outputs.append(finals[out(rec)])
    scans: list[tuple[Any, str]] = []
    for lo in parts.outputs:
        if lo.kind.name == "LAST_VALUE" and inp(lo, 0) in finals:
            continue
        dtype = g.onnx_dtype(lo.get_output(0).dtype)
        value = g.fresh(f"{lo.name}/value")
        body.append(helper.make_node("Identity", [inp(lo, 0)], [value], name=f"{lo.name}/value"))
        body_outputs.append(helper.make_tensor_value_info(value, dtype, None))
        scans.append((lo, g.fresh(f"{lo.name}/scan")))
    loop_outputs += [s for _, s in scans]
    graph = helper.make_graph(
        topological(body, [i.name for i in body_inputs]),
        f"{name}_body",
        body_inputs,
        body_outputs,
    )
    g.node("Loop", loop_inputs, loop_outputs, name=name, body=graph)
    scanned = dict((id(lo), s) for lo, s in scans)
    for lo in parts.outputs:
        _loop_output(
            g,
            lo,
            finals.get(str(inp(lo, 0))) if lo.kind.name == "LAST_VALUE" else None,
            scanned.get(id(lo)),
        )
    made = g.nodes[start:]
    del g.nodes[start:]
    return made


def _loop_output(g: GraphWriter, lo: Any, final: str | None, scan: str | None) -> None:
    """One loop output from the Loop's final value or scan output."""
    name, kind = lo.name, lo.kind.name
    if final is not None:
        g.node("Identity", [final], [out(lo)], name=name)
        return
    assert scan is not None
    if kind == "LAST_VALUE":
        last = g.const(np.int64(-1), f"{name}/last")
        g.node("Gather", [scan, last], [out(lo)], name=name, axis=0)
        return
    if kind == "REVERSE":
        starts, ends = g.ints([-1], f"{name}/starts"), g.ints([INT64_MIN], f"{name}/ends")
        axes, steps = g.ints([0], f"{name}/axes"), g.ints([-1], f"{name}/steps")
        (scan,) = g.node("Slice", [scan, starts, ends, axes, steps], 1, name=f"{name}/reverse")
    axis, rank = int(lo.axis), len(lo.get_output(0).shape)
    if axis == 0:
        g.node("Identity", [scan], [out(lo)], name=name)
        return
    perm = [*range(1, axis + 1), 0, *range(axis + 1, rank)]
    g.node("Transpose", [scan], [out(lo)], name=name, perm=perm)
