"""Build an ONNX graph: nodes, numpy constants, unique generated names.

Tensor names are Caffe blob names and node names are Caffe layer names wherever they exist;
helper tensors and helper nodes get generated names derived from the layer (``conv1/W``,
``fc6/Flatten``) that never collide with a Caffe name, because every Caffe name is reserved
before conversion starts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from trtimport.onnxtools.dtypes import onnx_type_of_numpy
from trtimport.onnxtools.graph import unique_name

Shape = tuple[int, ...]


class GraphBuilder:
    """Collects the nodes, initializers, inputs and outputs of one ONNX graph."""

    def __init__(self, reserved_tensors: Iterable[str] = (), reserved_nodes: Iterable[str] = ()):
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: dict[str, np.ndarray] = {}
        self.inputs: list[onnx.ValueInfoProto] = []
        self.outputs: list[onnx.ValueInfoProto] = []
        self._tensor_names: set[str] = set(reserved_tensors)
        self._node_names: set[str] = set(reserved_nodes)

    def fresh(self, hint: str) -> str:
        """A tensor name not used yet, ``hint`` itself if free."""
        return unique_name(hint, self._tensor_names)

    def fresh_node(self, hint: str) -> str:
        """A node name not used yet, ``hint`` itself if free."""
        return unique_name(hint, self._node_names)

    def claim(self, name: str) -> None:
        """Mark a tensor name as used (Caffe names are claimed by the caller)."""
        self._tensor_names.add(name)

    def const(self, value: np.ndarray | float | int | Sequence[Any], hint: str) -> str:
        """Add a constant as an initializer; float64 becomes float32, Python ints int64."""
        array = np.asarray(value)
        if array.dtype == np.float64:
            array = array.astype(np.float32)
        elif array.dtype.kind in "iu" and array.dtype != np.int32:
            array = array.astype(np.int64)
        name = self.fresh(hint)
        self.initializers[name] = array
        return name

    def ints(self, values: Sequence[int], hint: str) -> str:
        """An int64 1-D constant (shapes, axes, starts/ends)."""
        return self.const(np.asarray(list(values), dtype=np.int64), hint)

    def node(
        self, op: str, inputs: Sequence[str], outputs: Sequence[str], name: str, **attrs: Any
    ) -> None:
        """Append a node; ``name`` is made unique; attributes set to None are left out."""
        kept = {k: v for k, v in attrs.items() if v is not None}
        for out in outputs:
            self.claim(out)
        self.nodes.append(
            helper.make_node(op, list(inputs), list(outputs), name=self.fresh_node(name), **kept)
        )

    def add_input(self, name: str, shape: Shape, dtype: type = np.float32) -> None:
        """Declare a graph input."""
        self.claim(name)
        self.inputs.append(
            helper.make_tensor_value_info(name, onnx_type_of_numpy(dtype), list(shape))
        )

    def add_output(self, name: str, shape: Shape | None, dtype: type = np.float32) -> None:
        """Declare a graph output (``shape`` None leaves it unknown)."""
        dims = None if shape is None else list(shape)
        self.outputs.append(helper.make_tensor_value_info(name, onnx_type_of_numpy(dtype), dims))

    def graph(self, name: str, *, with_initializers: bool = False) -> onnx.GraphProto:
        """The graph; initializers are left out unless asked (the writer streams them)."""
        initializers = (
            [numpy_helper.from_array(a, n) for n, a in self.initializers.items()]
            if with_initializers
            else []
        )
        return helper.make_graph(
            self.nodes, name, self.inputs, self.outputs, initializer=initializers
        )
