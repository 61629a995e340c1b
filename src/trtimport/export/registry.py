"""Which converter writes each TensorRT layer type: the families, listed explicitly, merged.

A new family module goes into :data:`FAMILIES`; a layer type registered by two families is an
error naming both. Also here: the ILayer subclass that exposes each type's attributes, and the
lowest ONNX opset each type needs.
"""

from __future__ import annotations

import functools
from typing import Any

from trtimport.export import loops
from trtimport.export.layers import (
    attention,
    basic,
    conditional,
    conv,
    elementwise,
    quantize,
    reduce,
    shape,
)
from trtimport.export.layers.common import Converter

#: Every converter family, in one place.
FAMILIES = (basic, elementwise, shape, reduce, conv, quantize, conditional, attention, loops)

#: LayerType name -> the ILayer subclass that exposes its attributes.
LAYER_CLASSES: dict[str, str] = {
    "ACTIVATION": "IActivationLayer",
    "ASSERTION": "IAssertionLayer",
    "ATTENTION_INPUT": "IAttentionInputLayer",
    "ATTENTION_OUTPUT": "IAttentionOutputLayer",
    "CAST": "ICastLayer",
    "CONCATENATION": "IConcatenationLayer",
    "CONDITION": "IConditionLayer",
    "CONDITIONAL_INPUT": "IIfConditionalInputLayer",
    "CONDITIONAL_OUTPUT": "IIfConditionalOutputLayer",
    "CONSTANT": "IConstantLayer",
    "CONVOLUTION": "IConvolutionLayer",
    "CUMULATIVE": "ICumulativeLayer",
    "DECONVOLUTION": "IDeconvolutionLayer",
    "DEQUANTIZE": "IDequantizeLayer",
    "EINSUM": "IEinsumLayer",
    "ELEMENTWISE": "IElementWiseLayer",
    "FILL": "IFillLayer",
    "GATHER": "IGatherLayer",
    "GRID_SAMPLE": "IGridSampleLayer",
    "IDENTITY": "IIdentityLayer",
    "KV_CACHE_UPDATE": "IKVCacheUpdateLayer",
    "ITERATOR": "IIteratorLayer",
    "LOOP_OUTPUT": "ILoopOutputLayer",
    "LRN": "ILRNLayer",
    "MATRIX_MULTIPLY": "IMatrixMultiplyLayer",
    "NON_ZERO": "INonZeroLayer",
    "NORMALIZATION": "INormalizationLayer",
    "ONE_HOT": "IOneHotLayer",
    "PADDING": "IPaddingLayer",
    "PARAMETRIC_RELU": "IParametricReLULayer",
    "POOLING": "IPoolingLayer",
    "QUANTIZE": "IQuantizeLayer",
    "RECURRENCE": "IRecurrenceLayer",
    "REDUCE": "IReduceLayer",
    "RESIZE": "IResizeLayer",
    "ROTARY_EMBEDDING": "IRotaryEmbeddingLayer",
    "REVERSE_SEQUENCE": "IReverseSequenceLayer",
    "SCALE": "IScaleLayer",
    "SCATTER": "IScatterLayer",
    "SELECT": "ISelectLayer",
    "SHAPE": "IShapeLayer",
    "SHUFFLE": "IShuffleLayer",
    "SLICE": "ISliceLayer",
    "SOFTMAX": "ISoftMaxLayer",
    "SQUEEZE": "ISqueezeLayer",
    "TOPK": "ITopKLayer",
    "TRIP_LIMIT": "ITripLimitLayer",
    "UNARY": "IUnaryLayer",
    "UNSQUEEZE": "IUnsqueezeLayer",
}


@functools.cache
def converters() -> dict[str, Converter]:
    """LayerType name -> converter, from every family (a type claimed twice is an error)."""
    merged: dict[str, Converter] = {}
    owner: dict[str, str] = {}
    for family in FAMILIES:
        for kind, fn in family.CONVERTERS.table.items():
            if kind in merged:
                raise ValueError(f"two exporters for {kind}: {owner[kind]} and {family.__name__}")
            merged[kind], owner[kind] = fn, family.__name__
    return merged


#: Opset that introduced the quantized element types (8-bit integers: any).
_QUANT_TYPE_OPSETS = {"FP8": 19, "INT4": 21, "FP4": 23}


#: Layer types whose ONNX op is newer than opset 17.
_LAYER_OPSETS = {
    "ATTENTION_INPUT": 23,
    "ATTENTION_OUTPUT": 23,
    "ROTARY_EMBEDDING": 23,
    "KV_CACHE_UPDATE": 24,
}


def needed_opset(kind: str, layer: Any) -> int:
    """The lowest ONNX opset that can express ``layer`` (1 when any will do)."""
    if kind in ("QUANTIZE", "DEQUANTIZE"):
        quantized = layer.get_output(0) if kind == "QUANTIZE" else layer.get_input(0)
        return _QUANT_TYPE_OPSETS.get(str(quantized.dtype.name), 1)
    if kind in _LAYER_OPSETS:
        return _LAYER_OPSETS[kind]
    if kind == "SLICE" and layer.mode.name == "WRAP":
        return 19  # Pad's wrap mode
    if kind == "UNARY" and layer.op.name in ("ISINF", "ISNAN"):
        dtype = layer.get_input(0).dtype.name
        if dtype == "BF16" or (dtype == "HALF" and layer.op.name == "ISINF"):
            return 20  # the opset that gave IsInf float16 and both bfloat16

    return 1
