"""The ONNX graph being written for one TensorRT network: nodes, names, constants, order."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from trtimport.errors import UnsupportedLayerError
from trtimport.onnxtools.dtypes import onnx_name, trt_dtype_key
from trtimport.onnxtools.graph import GraphBuilder

if TYPE_CHECKING:
    import onnx


class GraphWriter(GraphBuilder):
    """The ONNX graph of one TensorRT network; the converters' toolbox.

    Constants are ``Constant`` nodes (the exported graph has no initializers); TensorRT tensor
    names are claimed before conversion, so helper names never take them.
    """

    def __init__(self, trt: Any, opset: int) -> None:
        import onnx

        super().__init__()
        self.trt = trt
        self.opset = opset
        self.onnx = onnx
        #: IIfConditional name -> condition tensor name (filled before conversion).
        self.conditions: dict[str, str] = {}
        #: ILoop name -> its body's iteration-number tensor (see export/loops.py).
        self.loop_iters: dict[str, str] = {}
        #: The LayerType name of the layer being converted (subclasses shadow ``type``).
        self.kind = ""

    def make_node(
        self, op: str, inputs: list[str], outputs: list[str], name: str, attrs: dict[str, Any]
    ) -> onnx.NodeProto:
        """A ``NodeProto`` message: the exporter reorders nodes and nests them in loops."""
        return self.onnx.helper.make_node(op, inputs, outputs, name=name, **attrs)

    def onnx_dtype(self, trt_dtype: Any) -> int:
        """TensorRT DataType -> ONNX element type."""
        name = onnx_name(trt_dtype)
        if name is None:
            raise UnsupportedLayerError(
                f"data type {trt_dtype_key(trt_dtype)} has no ONNX equivalent"
            )
        return int(getattr(self.onnx.TensorProto, name))

    def const(self, value: Any, hint: str, output: str | None = None) -> str:
        """A Constant node holding ``value`` as it is; returns its output tensor name."""
        from onnx import numpy_helper

        out = output or self.fresh(hint)
        tensor = numpy_helper.from_array(np.asarray(value), name=out)
        self.node("Constant", [], [out], name=hint, value=tensor)
        return out

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
