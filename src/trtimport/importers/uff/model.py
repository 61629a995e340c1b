"""Read a ``.uff`` file into plain Python: nodes with decoded fields, weights, dimension orders.

Field values come back as Python values (``str``, ``int``, ``float``, ``bool``, lists of them,
numpy dtypes for ``dtype`` fields, :class:`Orders` for dimension orders); references into the
file's ``referenced_data`` table are resolved. A blob (the weights) comes back as a read-only
``memoryview`` of the file, mapped, never read into memory as a copy (:mod:`.wire`): numpy
views of it become ONNX initializers that refer to the file (:mod:`trtimport.onnxtools.writer`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trtimport.errors import ModelParseError
from trtimport.importers.uff.wire import CorruptError, WireMeta, walk_meta
from trtimport.onnxtools.mapped import map_file
from trtimport.onnxtools.protowire import WireError

#: Markers inside an order list (see ``OrderKey`` in uff.proto).
ORDER_INCREMENT = 0x7FFFFFFF
ORDER_DECREMENT = -0x80000000
ORDER_ANY_RANK = -1

#: UFF data type codes (``DataType`` in uff_schema.proto) and their numpy dtypes.
DTYPES: dict[int, np.dtype] = {
    0x10008: np.dtype(np.int8),
    0x10010: np.dtype(np.int16),
    0x10020: np.dtype(np.int32),
    0x10040: np.dtype(np.int64),
    0x20010: np.dtype(np.float16),
    0x20020: np.dtype(np.float32),
}


class OrderError(ValueError):
    """A dimension order that does not describe a permutation of the tensor's axes."""


@dataclass(frozen=True)
class Orders:
    """One tensor's dimension order: per rank (or for any rank, key -1), a list of canonical
    axes (N or K = 0, C = 1, spatial = 2, 3, …) in the order the tensor stores them."""

    by_rank: dict[int, tuple[int, ...]]

    def permutation(self, rank: int) -> list[int]:
        """``perm[i]`` = the canonical axis stored at axis ``i`` of a tensor of ``rank``."""
        spec = self.by_rank.get(rank, self.by_rank.get(ORDER_ANY_RANK))
        if spec is None:
            raise OrderError(f"no dimension order for rank {rank} (orders {self.describe()})")
        return expand_order(spec, rank)

    def describe(self) -> str:
        """A short text form for error messages."""
        marks = {ORDER_INCREMENT: "+", ORDER_DECREMENT: "-"}
        return "; ".join(
            f"{'any rank' if k == ORDER_ANY_RANK else f'rank {k}'}: "
            + " ".join(marks.get(v, str(v)) for v in spec)
            for k, spec in self.by_rank.items()
        )


def expand_order(spec: tuple[int, ...], rank: int) -> list[int]:
    """Expand an order list with increment/decrement runs into a permutation of ``rank`` axes.

    ``v, INCREMENT`` stands for ``v, v+1, …`` and ``DECREMENT, v`` for ``…, v+1, v``: one run
    covers every axis the list does not name otherwise (it may be empty). A negative single
    value counts from the end of the canonical axes.
    """
    items: list[tuple[str, int]] = []
    i = 0
    while i < len(spec):
        value = spec[i]
        if value == ORDER_DECREMENT and i + 1 < len(spec):
            items.append(("down", spec[i + 1]))
            i += 2
        elif i + 1 < len(spec) and spec[i + 1] == ORDER_INCREMENT:
            items.append(("up", value))
            i += 2
        elif value in (ORDER_INCREMENT, ORDER_DECREMENT):
            raise OrderError(f"a run marker without a start in order {list(spec)}")
        else:
            items.append(("one", value))
            i += 1
    runs = sum(1 for kind, _ in items if kind != "one")
    singles = len(items) - runs
    if runs > 1 or singles > rank:
        raise OrderError(f"order {list(spec)} does not fit a tensor of rank {rank}")
    run_length = rank - singles
    perm: list[int] = []
    for kind, value in items:
        if kind == "one":
            perm.append(value + rank if value < 0 else value)
        elif kind == "up":
            perm += range(value, value + run_length)
        else:
            perm += range(value + run_length - 1, value - 1, -1)
    if sorted(perm) != list(range(rank)):
        raise OrderError(f"order {list(spec)} is not a permutation of {rank} axes")
    return perm


@dataclass
class UffNode:
    """One node of the graph."""

    name: str
    op: str
    inputs: list[str]
    fields: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """``name (Op)`` for messages."""
        return f"{self.name} ({self.op})"


@dataclass
class UffModel:
    """A UFF file's main graph."""

    path: Path
    version: int
    descriptors: list[str]
    graph: str
    #: Nodes by name, in file order.
    nodes: dict[str, UffNode]
    #: The tensors the ``MarkOutput`` nodes mark, in file order.
    outputs: list[str]


def _walk(path: Path) -> WireMeta:
    """The file's ``MetaGraph``, walked over a read-only mapping (no copy of the weights)."""
    try:
        if path.stat().st_size == 0:
            raise ModelParseError(f"{path}: the UFF file is empty")
        buf = memoryview(map_file(path))
    except OSError as err:
        raise ModelParseError(f"{path}: cannot read the UFF file: {err}") from err
    try:
        return walk_meta(buf)
    except (WireError, CorruptError) as err:
        raise ModelParseError(
            f"{path}: not a valid UFF file ({err}); the file may be truncated or corrupt. "
            "Convert the TensorFlow graph to UFF again, or download it again."
        ) from err


class _Decoder:
    """Turns ``Data`` values into Python values, resolving references."""

    def __init__(self, path: Path, table: dict[str, Any]) -> None:
        self.path = path
        self.table = table

    def value(self, data: Any, where: str, depth: int = 0) -> Any:
        if data is None:
            return None
        if isinstance(data, memoryview):
            return data  # a blob, viewed where it lies in the file
        kind = data.WhichOneof("type")
        if kind is None:
            return None
        if kind == "ref":
            target = self.table.get(data.ref)
            if target is None or depth > 8:
                raise ModelParseError(
                    f"{self.path}: {where} refers to '{data.ref}', which the file does not "
                    "hold; the file is corrupt or was cut."
                )
            return self.value(target, where, depth + 1)
        if kind in ("s", "d", "b", "i", "blob"):
            return getattr(data, kind)
        if kind in ("s_list", "d_list", "b_list", "i_list"):
            return list(getattr(data, kind).val)
        if kind == "dtype":
            return self.dtype(data.dtype, where)
        if kind == "dtype_list":
            return [self.dtype(v, where) for v in data.dtype_list.val]
        if kind == "dim_orders":
            return _orders(data.dim_orders)
        return [_orders(o) for o in data.dim_orders_list.val]

    def dtype(self, code: int, where: str) -> np.dtype:
        found = DTYPES.get(int(code))
        if found is None:
            raise ModelParseError(f"{self.path}: {where} has unknown data type code {code:#x}")
        return found


def _orders(message: Any) -> Orders:
    return Orders(
        {int(entry.key): tuple(int(v) for v in entry.value.val) for entry in message.orders}
    )


def load_uff(path: Path) -> UffModel:
    """Parse ``path``; a corrupt or truncated file, or one with no graph, is a ModelParseError."""
    path = Path(path)
    meta = _walk(path)
    if meta.graph is None:
        raise ModelParseError(f"{path}: the UFF file holds no graph (is it a UFF model?)")
    decoder = _Decoder(path, meta.table)
    nodes: dict[str, UffNode] = {}
    outputs: list[str] = []
    for message in meta.nodes:
        where = f"node '{message.name}' ({message.op})"
        if not message.name or not message.op:
            raise ModelParseError(
                f"{path}: a node has no name or no operation; the file is corrupt"
            )
        if message.name in nodes:
            raise ModelParseError(f"{path}: two nodes are named '{message.name}'")
        fields = {
            key: decoder.value(value, f"{where} field '{key}'") for key, value in message.fields
        }
        node = UffNode(message.name, message.op, message.inputs, fields)
        nodes[node.name] = node
        if node.op == "MarkOutput":
            outputs += node.inputs
    missing = sorted({i for n in nodes.values() for i in n.inputs if i not in nodes})
    if missing:
        raise ModelParseError(
            f"{path}: nodes read {len(missing)} node(s) the graph does not have; the file is "
            "corrupt or incomplete",
            missing[:20],
        )
    return UffModel(
        path=path,
        version=meta.version,
        descriptors=meta.descriptors,
        graph=meta.graph or "main",
        nodes=nodes,
        outputs=outputs,
    )
