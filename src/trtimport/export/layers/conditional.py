"""If-conditionals: the condition, conditional inputs and outputs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from trtimport.export.layers.common import Converters, inp, out, unsupported

if TYPE_CHECKING:
    from trtimport.export.graph import GraphWriter

CONVERTERS = Converters()
converts = CONVERTERS.converts


def collect_conditions(layers: Sequence[tuple[str, Any]]) -> dict[str, str]:
    """IIfConditional name -> its condition tensor, from the (kind, layer) condition layers."""
    found = {}
    for kind, layer in layers:
        if kind == "CONDITION":
            found[str(layer.conditional.name)] = str(layer.get_input(0).name)
    return found


@converts("CONDITION")
def condition(g: GraphWriter, layer: Any) -> None:
    """IConditionLayer only names the condition; the outputs select with it."""


@converts("CONDITIONAL_INPUT")
def conditional_input(g: GraphWriter, layer: Any) -> None:
    """IIfConditionalInputLayer -> Identity (both branches read the outer tensor)."""
    g.node("Identity", [inp(layer, 0)], [out(layer)], name=layer.name)


@converts("CONDITIONAL_OUTPUT")
def conditional_output(g: GraphWriter, layer: Any) -> None:
    """IIfConditionalOutputLayer -> If whose branches return the two branch results.

    Both branches' layers are exported unconditionally (they have no side effects); the If
    picks the result, so branches may produce different shapes.
    """
    helper = g.onnx.helper
    cond = g.conditions.get(str(layer.conditional.name))
    if cond is None:
        raise unsupported("conditional output without a condition layer")
    dtype = g.onnx_dtype(layer.get_output(0).dtype)
    branches = []
    for i, label in ((0, "then"), (1, "else")):
        result = g.fresh(f"{layer.name}/{label}")
        node = helper.make_node("Identity", [inp(layer, i)], [result], name=f"{layer.name}/{label}")
        value = helper.make_tensor_value_info(result, dtype, None)
        branches.append(helper.make_graph([node], f"{layer.name}_{label}", [], [value]))
    g.node(
        "If",
        [cond],
        [out(layer)],
        name=layer.name,
        then_branch=branches[0],
        else_branch=branches[1],
    )
