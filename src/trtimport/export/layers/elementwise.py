"""Elementwise, unary, select, parametric ReLU and activation layers."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from trtimport.export.layers.common import Converters, dtype_np, inp, out, scalar, unsupported

if TYPE_CHECKING:
    from trtimport.export.graph import GraphWriter

CONVERTERS = Converters()
converts = CONVERTERS.converts

_ELEMENTWISE = {
    "SUM": "Add",
    "PROD": "Mul",
    "MAX": "Max",
    "MIN": "Min",
    "SUB": "Sub",
    "DIV": "Div",
    "POW": "Pow",
    "AND": "And",
    "OR": "Or",
    "XOR": "Xor",
    "EQUAL": "Equal",
    "GREATER": "Greater",
    "LESS": "Less",
}


@converts("ELEMENTWISE")
def elementwise(g: GraphWriter, layer: Any) -> None:
    """IElementWiseLayer -> the binary op (FLOOR_DIV as floor of the quotient)."""
    a, b = inp(layer, 0), inp(layer, 1)
    op = layer.op.name
    if op != "FLOOR_DIV":
        g.node(_ELEMENTWISE[op], [a, b], [out(layer)], name=layer.name)
        return
    dtype = dtype_np(g, layer.get_input(0).dtype)
    if np.issubdtype(dtype, np.floating):
        (q,) = g.node("Div", [a, b], 1, name=f"{layer.name}/div")
        g.node("Floor", [q], [out(layer)], name=layer.name)
    else:
        # Integer Div truncates; subtracting the floored remainder first makes it exact.
        (r,) = g.node("Mod", [a, b], 1, name=f"{layer.name}/mod", fmod=0)
        (d,) = g.node("Sub", [a, r], 1, name=f"{layer.name}/sub")
        g.node("Div", [d, b], [out(layer)], name=layer.name)


_UNARY = {
    "EXP": "Exp",
    "LOG": "Log",
    "SQRT": "Sqrt",
    "RECIP": "Reciprocal",
    "ABS": "Abs",
    "NEG": "Neg",
    "SIN": "Sin",
    "COS": "Cos",
    "TAN": "Tan",
    "SINH": "Sinh",
    "COSH": "Cosh",
    "ASIN": "Asin",
    "ACOS": "Acos",
    "ATAN": "Atan",
    "ASINH": "Asinh",
    "ACOSH": "Acosh",
    "ATANH": "Atanh",
    "CEIL": "Ceil",
    "FLOOR": "Floor",
    "ERF": "Erf",
    "NOT": "Not",
    "SIGN": "Sign",
    "ROUND": "Round",
    "ISINF": "IsInf",
    "ISNAN": "IsNaN",
}


@converts("UNARY")
def unary(g: GraphWriter, layer: Any) -> None:
    """IUnaryLayer -> the unary op."""
    g.node(_UNARY[layer.op.name], [inp(layer, 0)], [out(layer)], name=layer.name)


@converts("SELECT")
def select(g: GraphWriter, layer: Any) -> None:
    """ISelectLayer -> Where."""
    ins = [inp(layer, i) for i in range(3)]
    g.node("Where", ins, [out(layer)], name=layer.name)


@converts("PARAMETRIC_RELU")
def prelu(g: GraphWriter, layer: Any) -> None:
    """IParametricReLULayer -> PRelu."""
    g.node("PRelu", [inp(layer, 0), inp(layer, 1)], [out(layer)], name=layer.name)


@converts("ACTIVATION")
def activation(g: GraphWriter, layer: Any) -> None:
    """IActivationLayer -> the ONNX activation (GELU and scaled forms decomposed)."""
    x, y, name = inp(layer, 0), out(layer), layer.name
    kind = str(layer.type.name)  # IActivationLayer.type is the activation type
    alpha, beta = float(layer.alpha), float(layer.beta)
    simple = {"RELU": "Relu", "SIGMOID": "Sigmoid", "TANH": "Tanh", "SOFTSIGN": "Softsign"}
    if kind in simple:
        g.node(simple[kind], [x], [y], name=name)
    elif kind == "LEAKY_RELU":
        g.node("LeakyRelu", [x], [y], name=name, alpha=alpha)
    elif kind == "ELU":
        g.node("Elu", [x], [y], name=name, alpha=alpha)
    elif kind == "SELU":
        g.node("Selu", [x], [y], name=name, alpha=alpha, gamma=beta)
    elif kind == "HARD_SIGMOID":
        g.node("HardSigmoid", [x], [y], name=name, alpha=alpha, beta=beta)
    elif kind == "THRESHOLDED_RELU":
        g.node("ThresholdedRelu", [x], [y], name=name, alpha=alpha)
    elif kind == "CLIP":
        lo, hi = (
            scalar(g, layer, alpha, f"{name}/min"),
            scalar(g, layer, beta, f"{name}/max"),
        )
        g.node("Clip", [x, lo, hi], [y], name=name)
    elif kind == "SOFTPLUS":  # alpha * log(1 + exp(beta * x))
        (bx,) = g.node("Mul", [x, scalar(g, layer, beta, f"{name}/beta")], 1, name=f"{name}/bx")
        (sp,) = g.node("Softplus", [bx], 1, name=f"{name}/softplus")
        g.node("Mul", [sp, scalar(g, layer, alpha, f"{name}/alpha")], [y], name=name)
    elif kind == "SCALED_TANH":  # alpha * tanh(beta * x)
        (bx,) = g.node("Mul", [x, scalar(g, layer, beta, f"{name}/beta")], 1, name=f"{name}/bx")
        (th,) = g.node("Tanh", [bx], 1, name=f"{name}/tanh")
        g.node("Mul", [th, scalar(g, layer, alpha, f"{name}/alpha")], [y], name=name)
    elif kind == "GELU_ERF":  # 0.5 * x * (1 + erf(x / sqrt(2)))
        (s,) = g.node(
            "Mul", [x, scalar(g, layer, 1 / math.sqrt(2), f"{name}/c")], 1, name=f"{name}/s"
        )
        (e,) = g.node("Erf", [s], 1, name=f"{name}/erf")
        (p,) = g.node("Add", [e, scalar(g, layer, 1.0, f"{name}/one")], 1, name=f"{name}/add")
        (h,) = g.node("Mul", [x, scalar(g, layer, 0.5, f"{name}/half")], 1, name=f"{name}/h")
        g.node("Mul", [h, p], [y], name=name)
    elif kind == "GELU_TANH":  # 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))
        (x3,) = g.node("Mul", [x, x], 1, name=f"{name}/x2")
        (x3,) = g.node("Mul", [x3, x], 1, name=f"{name}/x3")
        (c,) = g.node("Mul", [x3, scalar(g, layer, 0.044715, f"{name}/k")], 1, name=f"{name}/c")
        (s,) = g.node("Add", [x, c], 1, name=f"{name}/s")
        root = math.sqrt(2 / math.pi)
        (s,) = g.node("Mul", [s, scalar(g, layer, root, f"{name}/r")], 1, name=f"{name}/rs")
        (t,) = g.node("Tanh", [s], 1, name=f"{name}/tanh")
        (p,) = g.node("Add", [t, scalar(g, layer, 1.0, f"{name}/one")], 1, name=f"{name}/add")
        (h,) = g.node("Mul", [x, scalar(g, layer, 0.5, f"{name}/half")], 1, name=f"{name}/h")
        g.node("Mul", [h, p], [y], name=name)
    else:
        raise unsupported(f"activation {kind}")
