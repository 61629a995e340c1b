"""Attention building blocks (ONNX opset 23/24 ops)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from trtimport.export.layers.common import Converters, in_int64, inp, out, unsupported

if TYPE_CHECKING:
    from trtimport.export.graph import GraphWriter

CONVERTERS = Converters()
converts = CONVERTERS.converts


@converts("ROTARY_EMBEDDING")
def rotary_embedding(g: GraphWriter, layer: Any) -> None:
    """IRotaryEmbeddingLayer (input [batch, heads, sequence, head size]) -> RotaryEmbedding-23."""
    ins = [inp(layer, i) for i in range(layer.num_inputs)]
    g.node(
        "RotaryEmbedding",
        ins,
        [out(layer)],
        name=layer.name,
        interleaved=int(layer.interleaved),
        rotary_embedding_dim=int(layer.rotary_embedding_dim) or None,
    )


@converts("KV_CACHE_UPDATE")
def kv_cache_update(g: GraphWriter, layer: Any) -> None:
    """IKVCacheUpdateLayer (BHND cache, update written along the sequence axis) ->
    TensorScatter-24 with int64 write indices."""
    if layer.update_form.name != "PADDED_BHND":
        raise unsupported(f"KV cache update form {layer.update_form.name}")
    indices = in_int64(g, layer, 2) if inp(layer, 2) is not None else None
    g.node(
        "TensorScatter",
        [inp(layer, 0), inp(layer, 1), indices],
        [out(layer)],
        name=layer.name,
        axis=-2,
        mode=str(layer.cache_mode.name).lower(),
    )


@converts("ATTENTION_INPUT")
def attention(g: GraphWriter, layer: Any) -> None:
    """IAttention (its input layer) -> Attention-23 on BHND query/key/value, scale 1.

    TensorRT's attention applies no scale of its own (the parser scales Q and K before it);
    causal masks are upper-left aligned in both.
    """
    att = layer.attention
    problems = []
    if att.norm_op.name != "SOFTMAX":
        problems.append(f"normalization {att.norm_op.name}")
    if att.query_form.name != "PADDED_BHND" or att.key_value_form.name != "PADDED_BHND":
        problems.append(f"layouts {att.query_form.name}/{att.key_value_form.name}")
    if att.causal and att.causal_kind.name != "UPPER_LEFT":
        problems.append(f"causal mask {att.causal_kind.name}")
    if att.normalization_quantize_scale is not None:
        problems.append("quantized normalization")
    if att.query_lengths is not None or att.key_value_lengths is not None:
        problems.append("sequence lengths")
    if problems:
        raise unsupported(f"attention with {', '.join(problems)}")
    mask = None if att.mask is None else str(att.mask.name)
    g.node(
        "Attention",
        [inp(layer, 0), inp(layer, 1), inp(layer, 2), mask],
        [out(layer)],
        name=layer.name,
        is_causal=int(bool(att.causal)),
        scale=1.0,
    )


@converts("ATTENTION_OUTPUT")
def attention_output(g: GraphWriter, layer: Any) -> None:
    """IAttentionOutputLayer -> Identity of the Attention node's result."""
    g.node("Identity", [inp(layer, 0)], [out(layer)], name=layer.name)
