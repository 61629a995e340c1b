"""Quantize and dequantize layers."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from trtimport.export.layers.common import Converters, dims, inp, out, shape_of, unsupported

if TYPE_CHECKING:
    from trtimport.export.graph import GraphWriter

CONVERTERS = Converters()
converts = CONVERTERS.converts


def _zero_point(g: GraphWriter, layer: Any) -> str:
    """A zero zero-point of the quantized type, shaped like the scale (float8/4-bit too)."""
    zp_shape = shape_of(layer.get_input(1))
    to = g.onnx_dtype(layer.get_output(0).dtype)
    tensor = g.onnx.helper.make_tensor(
        g.fresh(f"{layer.name}/zero_point"), to, zp_shape, [0] * math.prod(zp_shape)
    )
    (zp,) = g.node("Constant", [], [tensor.name], name=f"{layer.name}/zero_point", value=tensor)
    return zp


@converts("QUANTIZE", "DEQUANTIZE")
def quantize(g: GraphWriter, layer: Any) -> None:
    """IQuantizeLayer/IDequantizeLayer -> QuantizeLinear/DequantizeLinear."""
    name = layer.name
    quant = g.kind == "QUANTIZE"
    try:
        shape = getattr(layer, "block_shape", None)  # TensorRT 10.7+
        block = dims(shape) if shape is not None else []
    except RuntimeError:  # TensorRT raises when no block shape was set
        block = []
    if block:
        raise unsupported("block quantization")
    x, s, zp = inp(layer, 0), inp(layer, 1), inp(layer, 2)
    if quant and zp is None:
        # ONNX infers the quantized type from the zero point (uint8 without one).
        zp = _zero_point(g, layer)
    scale_rank = len(shape_of(layer.get_input(1)))
    axis = int(layer.axis) if scale_rank else None
    op = "QuantizeLinear" if quant else "DequantizeLinear"
    g.node(op, [x, s, zp], [out(layer)], name=name, axis=axis)
