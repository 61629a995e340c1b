"""TFLite custom ops with documented semantics, converted by tf2onnx custom-op handlers.

MediaPipe's ``Convolution2DTransposeBias`` is a transposed convolution plus a bias. Its
custom options are TensorFlow Lite's ``TfLiteTransposeConvParams`` as raw bytes (not a
flexbuffer, which tf2onnx expects, so tf2onnx cannot read them): three little-endian int32s,
padding (1 SAME, 2 VALID), stride width, stride height. Its tensors are NHWC; the filter is
``[out_channels, kernel_h, kernel_w, in_channels]``.

Imported only while a TFLite model is converted (it imports tf2onnx).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trtimport.errors import ModelParseError

TRANSPOSE_CONV_BIAS = "Convolution2DTransposeBias"
_SAME, _VALID = 1, 2


@dataclass(frozen=True)
class TransposeConvParams:
    """One Convolution2DTransposeBias op's options."""

    padding: int
    stride_w: int
    stride_h: int


def transpose_conv_params(path: Path) -> dict[str, TransposeConvParams]:
    """Every Convolution2DTransposeBias op's options, by its output tensor's name."""
    from tf2onnx.tflite.Model import Model

    model = Model.GetRootAsModel(path.read_bytes(), 0)
    codes = [model.OperatorCodes(i).CustomCode() for i in range(model.OperatorCodesLength())]
    found: dict[str, TransposeConvParams] = {}
    for s in range(model.SubgraphsLength()):
        graph = model.Subgraphs(s)
        for i in range(graph.OperatorsLength()):
            op = graph.Operators(i)
            code = codes[op.OpcodeIndex()]
            if code is None or code.decode() != TRANSPOSE_CONV_BIAS:
                continue
            output = graph.Tensors(op.Outputs(0)).Name().decode()
            raw = op.CustomOptionsAsNumpy().tobytes() if not op.CustomOptionsIsNone() else b""
            if len(raw) < 12:
                raise ModelParseError(
                    f"{path}: {TRANSPOSE_CONV_BIAS} op '{output}' has {len(raw)} bytes of "
                    "options; expected padding, stride width and stride height (12 bytes)"
                )
            found[output] = TransposeConvParams(*struct.unpack("<3i", raw[:12]))
    return found


def _pads(size: int, kernel: int, stride: int, padding: int) -> tuple[int, int]:
    """Begin and end padding so the output is ``size * stride`` (SAME) or has none (VALID)."""
    if padding == _VALID:
        return 0, 0
    total = max(0, (size - 1) * stride + kernel - size * stride)
    return total // 2, total - total // 2


def _handler(params: dict[str, TransposeConvParams]) -> Callable[..., None]:
    def convert(ctx: Any, node: Any, name: str, args: Any) -> None:
        p = params.get(node.output[0])
        x, w, b = node.input[:3]
        in_shape, w_shape = ctx.get_shape(x), ctx.get_shape(w)
        if p is None or p.padding not in (_SAME, _VALID) or not in_shape or not w_shape:
            raise ModelParseError(
                f"{TRANSPOSE_CONV_BIAS} '{name}': needs known input and filter shapes and SAME "
                "or VALID padding"
            )
        n, h, wd, _ = in_shape
        out_c, kh, kw, _ = w_shape
        if h < 0 or wd < 0:
            raise ModelParseError(
                f"{TRANSPOSE_CONV_BIAS} '{name}': the input's height and width must be fixed"
            )
        top, bottom = _pads(h, kh, p.stride_h, p.padding)
        left, right = _pads(wd, kw, p.stride_w, p.padding)
        x_nchw = ctx.make_node("Transpose", [x], attr={"perm": [0, 3, 1, 2]}).output[0]
        w_iohw = ctx.make_node("Transpose", [w], attr={"perm": [3, 0, 1, 2]}).output[0]
        node.type = "ConvTranspose"
        node.domain = ""
        for key in list(node.attr):
            del node.attr[key]
        node.set_attr("strides", [p.stride_h, p.stride_w])
        node.set_attr("kernel_shape", [kh, kw])
        node.set_attr("pads", [top, left, bottom, right])
        ctx.replace_inputs(node, [x_nchw, w_iohw, b])
        out_h = (h - 1) * p.stride_h + kh - top - bottom
        out_w = (wd - 1) * p.stride_w + kw - left - right
        nhwc = ctx.insert_new_node_on_output("Transpose", node.output[0], perm=[0, 2, 3, 1])
        ctx.set_shape(node.output[0], [n, out_c, out_h, out_w])
        ctx.set_shape(nhwc.output[0], [n, out_h, out_w, out_c])
        ctx.set_dtype(nhwc.output[0], ctx.get_dtype(node.output[0]))

    return convert


def custom_op_handlers(path: Path) -> dict[str, tuple[Callable[..., None], list[Any]]]:
    """tf2onnx ``custom_op_handlers`` for the custom ops of the TFLite file at ``path``."""
    params = transpose_conv_params(path)
    if not params:
        return {}
    return {f"TFL_{TRANSPOSE_CONV_BIAS}": (_handler(params), [])}
