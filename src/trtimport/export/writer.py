"""Write a populated TensorRT ``INetworkDefinition`` as an ONNX model (see what TensorRT got).

Whatever importer filled the network, every layer becomes one ONNX node named after the layer
(or a few nodes: the main one carries the layer's name, helpers are named ``LAYER/...``), and
every tensor keeps its TensorRT name. Layer types with no ONNX equivalent are all listed in one
:class:`~trtimport.errors.UnsupportedLayerError`. The per-layer converters live in
:mod:`trtimport.export.layers` (one module per layer family), listed in
:mod:`trtimport.export.registry`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtimport.core.files import atomic_path
from trtimport.errors import UnsupportedLayerError
from trtimport.export.graph import GraphWriter, topological
from trtimport.export.layers.conditional import collect_conditions
from trtimport.export.loops import assemble_loops
from trtimport.export.registry import LAYER_CLASSES, converters, needed_opset

if TYPE_CHECKING:
    import onnx

    from trtimport.core.backend import Backend

DEFAULT_OPSET = 17


def _cast_layer(trt: Any, layer: Any) -> tuple[str, Any]:
    """(layer type name, the layer cast to its subclass: TensorRT's ``__class__`` idiom)."""
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

    trt = backend.trt
    layers = [network.get_layer(i) for i in range(network.num_layers)]
    typed = [_cast_layer(trt, layer) for layer in layers]
    opset, unsupported = _choose_opset(typed, opset)
    g = GraphWriter(trt, opset)
    g.conditions = collect_conditions(typed)
    inputs = [network.get_input(i) for i in range(network.num_inputs)]
    for t in inputs:
        g.claim(t.name)
    for layer in layers:
        for j in range(layer.num_outputs):
            out = layer.get_output(j)
            if out is not None:
                g.claim(out.name)
    spans: dict[int, tuple[int, int]] = {}  # layer index -> its nodes in g.nodes
    for index, (kind, layer) in enumerate(typed):
        g.kind = kind
        start = len(g.nodes)
        convert = converters().get(kind)
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
