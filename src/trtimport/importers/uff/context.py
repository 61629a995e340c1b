"""What an op handler works with: the UFF model, the ONNX graph being built, and shape queries.

Every tensor of the ONNX graph that stands for a UFF node's output is named after the node, so
``--output NODE`` and error messages use the UFF's own names. Constants are added to the graph
only when a handler uses them as tensors; handlers that need their values (shapes, paddings,
kernels) read them with :meth:`Converter.value`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from trtimport.importers.uff.model import OrderError, Orders, UffModel, UffNode
from trtimport.onnxtools.graph import GraphBuilder

Dims = tuple[int | None, ...]


class NotConvertible(Exception):
    """This node cannot be converted as it is (the message says why); collected, not raised."""


@dataclass
class Request:
    """What the user asked of the conversion."""

    opset: int = 17
    #: Node names to make the graph's outputs instead of the MarkOutput nodes' inputs.
    outputs: list[str] = field(default_factory=list)
    #: Fixed input shapes (``--input``), in the layout the engine takes.
    input_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    #: Inputs given shape ranges (``--shapes``/``--profile``): a -1 axis stays dynamic.
    dynamic_inputs: set[str] = field(default_factory=set)
    #: Inputs whose channel-last layout the engine takes channel-second (``--inputs-as-nchw``).
    inputs_as_nchw: set[str] = field(default_factory=set)


class Converter:
    """The state of one UFF -> ONNX conversion, handed to every op handler."""

    def __init__(self, model: UffModel, request: Request) -> None:
        self.model = model
        self.request = request
        self.opset = request.opset
        self.graph = GraphBuilder(reserved_tensors=model.nodes, reserved_nodes=model.nodes)
        self._values: dict[str, np.ndarray] = {}
        self._materialized: set[str] = set()
        self._dims: dict[str, Dims] = {}
        self._types: dict[str, int] = {}
        self._aliases: dict[str, str] = {}

    # --- nodes and constants -------------------------------------------------------------

    def node(self, name: str) -> UffNode:
        """The UFF node called ``name``."""
        return self.model.nodes[name]

    def set_value(self, name: str, array: np.ndarray) -> None:
        """Record a constant node's value (its tensor is added when first used)."""
        self._values[name] = array
        self._dims[name] = tuple(int(d) for d in array.shape)

    def value(self, name: str) -> np.ndarray | None:
        """The value of a node that is a constant, else None."""
        return self._values.get(name)

    def const_input(self, node: UffNode, index: int, what: str) -> np.ndarray:
        """Input ``index`` of ``node``, which must be a constant."""
        if index >= len(node.inputs):
            raise NotConvertible(f"has no input {index} ({what})")
        found = self.value(node.inputs[index])
        if found is None:
            raise NotConvertible(
                f"its {what} ('{node.inputs[index]}') is computed in the graph; only a constant "
                "is supported"
            )
        return found

    def tensor(self, name: str) -> str:
        """The ONNX tensor holding node ``name``'s output (adds a constant on first use)."""
        if name in self._values and name not in self._materialized:
            self._materialized.add(name)
            self.graph.initializers[name] = self._values[name]
        return self._aliases.get(name, name)

    def alias(self, name: str, tensor: str) -> None:
        """Node ``name``'s output is held by ``tensor`` (a graph input keeps the node's name)."""
        self._aliases[name] = tensor

    def inputs(self, node: UffNode) -> list[str]:
        """The ONNX tensors of all of ``node``'s inputs."""
        return [self.tensor(i) for i in node.inputs]

    def const(self, value: Any, hint: str) -> str:
        """A new constant tensor (float64 becomes float32, Python ints int64)."""
        return self.graph.const(value, hint)

    def ints(self, values: Sequence[int], hint: str) -> str:
        """A new int64 1-D constant."""
        return self.graph.ints([int(v) for v in values], hint)

    def emit(self, op: str, inputs: Sequence[str], output: str, **attrs: Any) -> str:
        """Add one ONNX node writing ``output``; returns ``output``."""
        self.graph.node(op, inputs, [output], name=output, **attrs)
        return output

    def step(self, op: str, inputs: Sequence[str], hint: str, **attrs: Any) -> str:
        """Add one ONNX node writing a fresh tensor named after ``hint``; returns it."""
        return self.emit(op, inputs, self.graph.fresh(hint), **attrs)

    def transpose(self, tensor: str, perm: Sequence[int], hint: str) -> str:
        """``tensor`` transposed by ``perm`` (no node for the identity permutation)."""
        if list(perm) == list(range(len(perm))):
            return tensor
        return self.step("Transpose", [tensor], hint, perm=[int(p) for p in perm])

    # --- shapes ---------------------------------------------------------------------------

    def dims(self, name: str) -> Dims | None:
        """The shape of tensor ``name`` (None for unknown dimensions), or None if unknown."""
        if name not in self._dims:
            self._infer()
        return self._dims.get(name)

    def rank(self, name: str) -> int:
        """The rank of tensor ``name``; unknown is NotConvertible."""
        dims = self.dims(name)
        if dims is None:
            raise NotConvertible(f"the rank of its input '{name}' cannot be inferred")
        return len(dims)

    def elem_type(self, name: str) -> int:
        """The ONNX element type of tensor ``name`` (float if unknown)."""
        if name in self._values:
            return helper.np_dtype_to_tensor_dtype(self._values[name].dtype)
        if name not in self._types:
            self._infer()
        return self._types.get(name, onnx.TensorProto.FLOAT)

    def permutation(self, orders: Any, index: int, rank: int, node: UffNode) -> list[int]:
        """The storage -> canonical axis list of ``node``'s ``inputs_orders[index]``."""
        if not isinstance(orders, list) or index >= len(orders):
            raise NotConvertible(f"has no dimension order for its input {index}")
        order = orders[index]
        if not isinstance(order, Orders):
            raise NotConvertible(f"inputs_orders[{index}] is not a dimension order")
        try:
            return order.permutation(rank)
        except OrderError as err:
            raise NotConvertible(str(err)) from err

    def _infer(self) -> None:
        """Run ONNX shape inference on the graph so far (big weights enter as typed inputs)."""
        graph = self.graph
        small = {
            n: a for n, a in graph.initializers.items() if a.size <= 64 or a.dtype.kind in "iub"
        }
        declared = [
            helper.make_tensor_value_info(
                n, helper.np_dtype_to_tensor_dtype(a.dtype), list(a.shape)
            )
            for n, a in graph.initializers.items()
            if n not in small
        ]
        partial = onnx.GraphProto.FromString(graph.graph("infer"))
        del partial.output[:]
        partial.input.extend(declared)
        partial.initializer.extend(numpy_helper.from_array(a, n) for n, a in small.items())
        model = helper.make_model(partial, opset_imports=[helper.make_opsetid("", self.opset)])
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
        for info in [*inferred.graph.input, *inferred.graph.value_info]:
            tensor_type = info.type.tensor_type
            self._types[info.name] = tensor_type.elem_type
            if tensor_type.HasField("shape"):
                self._dims[info.name] = tuple(
                    d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim
                )
