"""The ONNX graph being written for one TensorRT network: nodes, names, constants, order."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from trtimport.errors import UnsupportedLayerError
from trtimport.onnxtools.dtypes import onnx_name, trt_dtype_key

if TYPE_CHECKING:
    import onnx


class GraphWriter:
    """Accumulates ONNX nodes for one network; the converters' toolbox."""

    def __init__(self, trt: Any, opset: int) -> None:
        import onnx

        self.trt = trt
        self.opset = opset
        self.onnx = onnx
        self.nodes: list[onnx.NodeProto] = []
        self._names: set[str] = set()
        self._node_names: set[str] = set()
        self._counter = itertools.count()
        #: IIfConditional name -> condition tensor name (filled before conversion).
        self.conditions: dict[str, str] = {}
        #: ILoop name -> its body's iteration-number tensor (see export/loops.py).
        self.loop_iters: dict[str, str] = {}
        #: The LayerType name of the layer being converted (subclasses shadow ``type``).
        self.kind = ""

    # -- names ------------------------------------------------------------------------------

    def reserve(self, name: str) -> None:
        """Mark a TensorRT tensor name as taken."""
        self._names.add(name)

    def fresh(self, hint: str) -> str:
        """A tensor name no other tensor uses, derived from ``hint``."""
        return self._unique(hint, self._names)

    def _node_name(self, hint: str) -> str:
        return self._unique(hint, self._node_names)

    def _unique(self, hint: str, taken: set[str]) -> str:
        name = hint
        while name in taken:
            name = f"{hint}_{next(self._counter)}"
        taken.add(name)
        return name

    # -- tensors and nodes ------------------------------------------------------------------

    def onnx_dtype(self, trt_dtype: Any) -> int:
        """TensorRT DataType -> ONNX element type."""
        name = onnx_name(trt_dtype)
        if name is None:
            raise UnsupportedLayerError(
                f"data type {trt_dtype_key(trt_dtype)} has no ONNX equivalent"
            )
        return int(getattr(self.onnx.TensorProto, name))

    def node(
        self,
        op: str,
        inputs: Sequence[str | None],
        outputs: list[str] | int = 1,
        *,
        name: str,
        **attrs: Any,
    ) -> list[str]:
        """Add a node; ``outputs`` is a list of names or how many fresh names to make."""
        if isinstance(outputs, int):
            outputs = [self.fresh(f"{name}/{op}_out{i}") for i in range(outputs)]
        ins = [i if i is not None else "" for i in inputs]
        while ins and ins[-1] == "":
            ins.pop()
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(
            self.onnx.helper.make_node(op, ins, outputs, name=self._node_name(name), **attrs)
        )
        return outputs

    def const(self, array: Any, name: str, output: str | None = None) -> str:
        """A Constant node holding ``array``; returns its output tensor name."""
        from onnx import numpy_helper

        out = output or self.fresh(name)
        tensor = numpy_helper.from_array(np.asarray(array), name=out)
        self.node("Constant", [], [out], name=name, value=tensor)
        return out

    def ints(self, values: Any, name: str) -> str:
        """A 1-D int64 constant (shapes, axes, pads)."""
        return self.const(np.asarray(values, dtype=np.int64).reshape(-1), name)

    def cast(self, tensor: str, to: int, name: str) -> str:
        """Cast ``tensor`` to ONNX element type ``to``."""
        return self.node("Cast", [tensor], 1, name=name, to=to)[0]


def _reads(node: onnx.NodeProto) -> list[str]:
    """Tensors a node reads, including those its subgraphs (Loop/If bodies) take from outside."""
    names = list(node.input)
    for attr in node.attribute:
        if attr.HasField("g"):
            names += [name for inner in attr.g.node for name in _reads(inner)]
    return names


def topological(nodes: list[onnx.NodeProto], inputs: list[str]) -> list[onnx.NodeProto]:
    """Order nodes so every input is produced first (TensorRT may wire inputs afterwards)."""
    producer = {o: i for i, n in enumerate(nodes) for o in n.output}
    done: set[int] = set()
    order: list[onnx.NodeProto] = []
    for start in range(len(nodes)):
        stack = [(start, False)]
        while stack:
            i, expanded = stack.pop()
            if i in done:
                continue
            if expanded:
                done.add(i)
                order.append(nodes[i])
                continue
            stack.append((i, True))
            for name in _reads(nodes[i]):
                j = producer.get(name)
                if j is not None and j not in done:
                    stack.append((j, False))
    return order
