"""Write a populated TensorRT ``INetworkDefinition`` as an ONNX model (see what TensorRT got).

Whatever importer filled the network, every layer becomes one ONNX node named after the layer
(or a few nodes: the main one carries the layer's name, helpers are named ``LAYER/...``), and
every tensor keeps its TensorRT name. Layer types with no ONNX equivalent are all listed in one
:class:`~trtimport.errors.UnsupportedLayerError`. The per-layer converters live in
:mod:`trtimport.export.layers`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from trtimport.core.files import atomic_path
from trtimport.errors import UnsupportedLayerError

if TYPE_CHECKING:
    import onnx

    from trtimport.core.backend import Backend

DEFAULT_OPSET = 17

# TensorRT DataType name -> ONNX TensorProto.DataType name.
_ONNX_DTYPES = {
    "FLOAT": "FLOAT",
    "HALF": "FLOAT16",
    "BF16": "BFLOAT16",
    "INT8": "INT8",
    "INT32": "INT32",
    "INT64": "INT64",
    "BOOL": "BOOL",
    "UINT8": "UINT8",
    "FP8": "FLOAT8E4M3FN",
    "INT4": "INT4",
    "FP4": "FLOAT4E2M1",
}


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
        #: ILoop name -> its body's iteration-number tensor (see export_loops).
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
        key = str(getattr(trt_dtype, "name", trt_dtype)).split(".")[-1].upper()
        if key not in _ONNX_DTYPES:
            raise UnsupportedLayerError(f"data type {key} has no ONNX equivalent")
        return int(getattr(self.onnx.TensorProto, _ONNX_DTYPES[key]))

    def onnx_dtype_of_numpy(self, dtype: Any) -> int:
        """numpy dtype -> ONNX element type."""
        return int(self.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype)))

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


def _cast_layer(trt: Any, layer: Any) -> tuple[str, Any]:
    """(layer type name, the layer cast to its subclass: TensorRT's ``__class__`` idiom)."""
    from trtimport.export.layers import LAYER_CLASSES

    kind = str(layer.type.name)
    cls_name = LAYER_CLASSES.get(kind)
    if cls_name and hasattr(trt, cls_name):
        layer.__class__ = getattr(trt, cls_name)
    return kind, layer


def _value_info(g: GraphWriter, tensor: Any) -> onnx.ValueInfoProto:
    shape = [d if d >= 0 else f"{tensor.name}_dim{i}" for i, d in enumerate(tensor.shape)]
    return g.onnx.helper.make_tensor_value_info(tensor.name, g.onnx_dtype(tensor.dtype), shape)


def _choose_opset(typed: list[tuple[str, Any]], opset: int | None) -> tuple[int, list[str]]:
    """(the opset to write, the layers that need more than an explicitly requested one).

    Without a request the opset is :data:`DEFAULT_OPSET`, raised to what the layers need.
    """
    from trtimport.export.layers import needed_opset

    needs = [(needed_opset(kind, layer), kind, layer) for kind, layer in typed]
    if opset is None:
        return max([DEFAULT_OPSET, *(n for n, _, _ in needs)]), []
    too_low = [
        f"{kind} layer '{layer.name}': needs ONNX opset >= {n} (requested {opset})"
        for n, kind, layer in needs
        if n > opset
    ]
    return opset, too_low


def network_to_onnx(
    network: Any, backend: Backend, opset: int | None = None, name: str = "network"
) -> onnx.ModelProto:
    """The network as an in-memory ONNX model (see the module docstring).

    ``opset`` None picks the lowest opset from :data:`DEFAULT_OPSET` up that every layer needs.
    """
    import onnx

    from trtimport.export.layers import CONVERTERS, collect_conditions
    from trtimport.export.loops import assemble_loops

    trt = backend.trt
    layers = [network.get_layer(i) for i in range(network.num_layers)]
    typed = [_cast_layer(trt, layer) for layer in layers]
    opset, unsupported = _choose_opset(typed, opset)
    g = GraphWriter(trt, opset)
    g.conditions = collect_conditions(typed)
    inputs = [network.get_input(i) for i in range(network.num_inputs)]
    for t in inputs:
        g.reserve(t.name)
    for layer in layers:
        for j in range(layer.num_outputs):
            out = layer.get_output(j)
            if out is not None:
                g.reserve(out.name)
    spans: dict[int, tuple[int, int]] = {}  # layer index -> its nodes in g.nodes
    for index, (kind, layer) in enumerate(typed):
        g.kind = kind
        start = len(g.nodes)
        convert = CONVERTERS.get(kind)
        if convert is None:
            unsupported.append(f"{kind} layer '{layer.name}'")
            continue
        try:
            convert(g, layer)
        except UnsupportedLayerError as err:
            unsupported.append(f"{kind} layer '{layer.name}': {err}")
        spans[index] = (start, len(g.nodes))
    if not unsupported:
        try:
            unsupported += assemble_loops(g, typed, spans)
        except UnsupportedLayerError as err:
            unsupported.append(str(err))
    if unsupported:
        raise UnsupportedLayerError(
            f"cannot export the network as ONNX: {len(unsupported)} layer(s) cannot be "
            "expressed by trtimport's exporter",
            unsupported,
        )

    graph = onnx.helper.make_graph(
        topological(g.nodes, [t.name for t in inputs]),
        name,
        [_value_info(g, t) for t in inputs],
        [_value_info(g, network.get_output(i)) for i in range(network.num_outputs)],
    )
    opsets = [onnx.helper.make_opsetid("", opset)]
    model = onnx.helper.make_model(
        graph,
        opset_imports=opsets,
        producer_name="trtimport",
        ir_version=onnx.helper.find_min_ir_version_for(opsets),
    )
    model.doc_string = f"TensorRT network as built by {backend.name} {backend.version}"
    return model


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


def export_network_onnx(
    network: Any, dest: str | Path, backend: Backend, opset: int | None = None
) -> Path:
    """Write the populated network as ONNX at ``dest`` (atomically); returns ``dest``.

    ``opset`` None picks the opset automatically (see :func:`network_to_onnx`).
    """
    import onnx

    dest = Path(dest)
    model = network_to_onnx(network, backend, opset, name=dest.stem or "network")
    with atomic_path(dest) as tmp:
        onnx.save(model, str(tmp))
    return dest
