"""Constants, identity, casts and assertions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from trtimport.export.layers.common import Converters, dims, dtype_np, inp, out, weights_array

if TYPE_CHECKING:
    from trtimport.export.graph import GraphWriter

CONVERTERS = Converters()
converts = CONVERTERS.converts


@converts("CONSTANT")
def constant(g: GraphWriter, layer: Any) -> None:
    """IConstantLayer -> Constant with the weights in the output's dtype and shape."""
    shape = dims(layer.shape)
    array = weights_array(layer.weights)
    want = dtype_np(g, layer.get_output(0).dtype)
    g.const(array.astype(want, copy=False).reshape(shape), layer.name, output=out(layer))


@converts("IDENTITY")
def identity(g: GraphWriter, layer: Any) -> None:
    """IIdentityLayer -> Identity, or Cast when the output type differs."""
    src, dst = layer.get_input(0).dtype, layer.get_output(0).dtype
    if src == dst:
        g.node("Identity", [inp(layer, 0)], [out(layer)], name=layer.name)
    else:
        g.node("Cast", [inp(layer, 0)], [out(layer)], name=layer.name, to=g.onnx_dtype(dst))


@converts("CAST")
def cast(g: GraphWriter, layer: Any) -> None:
    """ICastLayer -> Cast."""
    to = g.onnx_dtype(layer.get_output(0).dtype)
    g.node("Cast", [inp(layer, 0)], [out(layer)], name=layer.name, to=to)


@converts("ASSERTION")
def assertion(g: GraphWriter, layer: Any) -> None:
    """IAssertionLayer checks shapes at build time and has no outputs: nothing to emit."""
