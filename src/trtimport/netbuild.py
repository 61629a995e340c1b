"""Short, readable helpers for hand-written TensorRT networks (network scripts).

A :class:`NetBuilder` wraps the empty ``INetworkDefinition`` a script receives, its
:class:`Weights` and the TensorRT module (``tensorrt`` or
``tensorrt_rtx``; both have the same network API). Every helper takes weight *names*, checks
their shapes, names its layer and output tensor after ``name`` and returns the output tensor::

    nb = NetBuilder(network, weights, trt)
    x = nb.input("data", (1, 1, 28, 28))
    x = nb.conv(x, 20, 5, kernel="conv1/0", bias="conv1/1", name="conv1")
    x = nb.pool(x, "max", 2, stride=2, name="pool1")
    nb.mark_output(nb.softmax(x, axis=1, name="prob"))

Networks are strongly typed on TensorRT-RTX and TensorRT 11, so every weight is converted to
the dtype of the tensor it combines with, and constants are created with an explicit dtype.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from trtimport.errors import ShapeError, UsageError
from trtimport.importers.script.weights import Weights

__all__ = ["NetBuilder", "Weights"]

IntOrSeq = int | Sequence[int]

_ACTIVATIONS = {
    "relu": "RELU",
    "sigmoid": "SIGMOID",
    "tanh": "TANH",
    "leaky_relu": "LEAKY_RELU",
    "elu": "ELU",
    "selu": "SELU",
    "softsign": "SOFTSIGN",
    "softplus": "SOFTPLUS",
    "clip": "CLIP",
    "hard_sigmoid": "HARD_SIGMOID",
    "scaled_tanh": "SCALED_TANH",
    "thresholded_relu": "THRESHOLDED_RELU",
    "gelu": "GELU_ERF",
    "gelu_tanh": "GELU_TANH",
}

_ELEMENTWISE = {
    "sum": "SUM",
    "add": "SUM",
    "sub": "SUB",
    "prod": "PROD",
    "mul": "PROD",
    "div": "DIV",
    "max": "MAX",
    "min": "MIN",
    "pow": "POW",
}

_POOLING = {"max": "MAX", "avg": "AVERAGE", "average": "AVERAGE"}


def _pair(value: IntOrSeq, rank: int) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * rank
    values = tuple(int(v) for v in value)
    if len(values) != rank:
        raise UsageError(f"expected {rank} values, got {list(values)}")
    return values


class NetBuilder:
    """Layer helpers over one network; see the module docstring."""

    def __init__(self, network: Any, weights: Weights, trt: Any) -> None:
        self.network = network
        self.weights = weights
        self.trt = trt

    # -- plumbing ---------------------------------------------------------------------------

    def _named(self, layer: Any, name: str, output: int = 0) -> Any:
        layer.name = name
        tensor = layer.get_output(output)
        tensor.name = name
        return tensor

    def _np_dtype(self, tensor: Any) -> Any:
        return np.dtype(self.trt.nptype(tensor.dtype))

    def _trt_weights(self, array: np.ndarray) -> Any:
        return self.trt.Weights(self.weights.pin(array))

    def weight(self, name: str, shape: Sequence[int], like: Any) -> np.ndarray:
        """The weight ``name`` with ``shape``, in the dtype of tensor ``like`` (pinned)."""
        return self.weights.get(name, shape=shape, dtype=self._np_dtype(like))

    def input(self, name: str, shape: Sequence[int], dtype: str = "float32") -> Any:
        """Add a network input."""
        trt_dtype = {"float32": self.trt.float32, "float16": self.trt.float16}.get(dtype)
        if trt_dtype is None:
            trt_dtype = getattr(self.trt, dtype)
        return self.network.add_input(name, trt_dtype, tuple(int(d) for d in shape))

    def constant(self, array: np.ndarray, name: str) -> Any:
        """A constant tensor holding ``array`` (its dtype is kept, explicitly)."""
        array = self.weights.pin(np.asarray(array))
        layer = self.network.add_constant(array.shape, self._trt_weights(array))
        return self._named(layer, name)

    def mark_output(self, tensor: Any, name: str | None = None) -> Any:
        """Mark ``tensor`` as a network output (renaming it first if ``name`` is given)."""
        if name is not None:
            tensor.name = name
        self.network.mark_output(tensor)
        return tensor

    # -- layers -----------------------------------------------------------------------------

    def conv(
        self,
        x: Any,
        out_channels: int,
        kernel_size: IntOrSeq,
        *,
        kernel: str,
        bias: str | None = None,
        stride: IntOrSeq = 1,
        padding: IntOrSeq = 0,
        groups: int = 1,
        dilation: IntOrSeq = 1,
        name: str,
    ) -> Any:
        """Convolution; ``kernel`` has shape (out, in/groups, *kernel_size)."""
        return self._convolution(
            False,
            x,
            out_channels,
            kernel_size,
            kernel,
            bias,
            stride,
            padding,
            groups,
            dilation,
            name,
        )

    def deconv(
        self,
        x: Any,
        out_channels: int,
        kernel_size: IntOrSeq,
        *,
        kernel: str,
        bias: str | None = None,
        stride: IntOrSeq = 1,
        padding: IntOrSeq = 0,
        groups: int = 1,
        dilation: IntOrSeq = 1,
        name: str,
    ) -> Any:
        """Transposed convolution; ``kernel`` has shape (in, out/groups, *kernel_size)."""
        return self._convolution(
            True,
            x,
            out_channels,
            kernel_size,
            kernel,
            bias,
            stride,
            padding,
            groups,
            dilation,
            name,
        )

    def _convolution(
        self,
        transposed: bool,
        x: Any,
        out_channels: int,
        kernel_size: IntOrSeq,
        kernel: str,
        bias: str | None,
        stride: IntOrSeq,
        padding: IntOrSeq,
        groups: int,
        dilation: IntOrSeq,
        name: str,
    ) -> Any:
        rank = len(x.shape) - 2
        ksize = _pair(kernel_size, rank)
        in_channels = int(x.shape[1])
        if transposed:
            w_shape = (in_channels, out_channels // groups, *ksize)
            add = self.network.add_deconvolution_nd
        else:
            w_shape = (out_channels, in_channels // groups, *ksize)
            add = self.network.add_convolution_nd
        w = self.weight(kernel, w_shape, x)
        b = self.weight(bias, (out_channels,), x) if bias else None
        layer = add(
            x,
            out_channels,
            ksize,
            self._trt_weights(w),
            self._trt_weights(b) if b is not None else self.trt.Weights(x.dtype),
        )
        layer.stride_nd = _pair(stride, rank)
        layer.padding_nd = _pair(padding, rank)
        layer.dilation_nd = _pair(dilation, rank)
        layer.num_groups = groups
        return self._named(layer, name)

    def scale(
        self, x: Any, *, scale: str | None = None, shift: str | None = None, name: str
    ) -> Any:
        """Per-channel ``x * scale + shift`` (channel axis 1) from the named weights."""
        channels = int(x.shape[1])
        s = self.weight(scale, (channels,), x) if scale else np.ones(channels, self._np_dtype(x))
        b = self.weight(shift, (channels,), x) if shift else np.zeros(channels, self._np_dtype(x))
        return self._scale_layer(x, s, b, name)

    def _scale_layer(self, x: Any, scale: np.ndarray, shift: np.ndarray, name: str) -> Any:
        layer = self.network.add_scale(
            x,
            self.trt.ScaleMode.CHANNEL,
            self._trt_weights(shift),
            self._trt_weights(scale),
            self.trt.Weights(x.dtype),
        )
        return self._named(layer, name)

    def batch_norm(
        self,
        x: Any,
        *,
        mean: str,
        var: str,
        gamma: str | None = None,
        beta: str | None = None,
        eps: float = 1e-5,
        factor: str | None = None,
        name: str,
    ) -> Any:
        """Inference batch norm folded into one per-channel scale layer.

        ``factor`` names Caffe's third BatchNorm blob (mean and var are divided by it).
        """
        channels = int(x.shape[1])
        m = self.weights.get(mean, shape=(channels,)).astype(np.float64)
        v = self.weights.get(var, shape=(channels,)).astype(np.float64)
        if factor:
            f = float(self.weights.get(factor, shape=(1,))[0])
            f = 1.0 / f if f != 0 else 0.0
            m, v = m * f, v * f
        g = self.weights.get(gamma, shape=(channels,)) if gamma else np.ones(channels)
        b = self.weights.get(beta, shape=(channels,)) if beta else np.zeros(channels)
        s = g / np.sqrt(v + eps)
        dtype = self._np_dtype(x)
        return self._scale_layer(x, s.astype(dtype), (b - m * s).astype(dtype), name)

    def activation(
        self, x: Any, kind: str = "relu", *, alpha: float = 0.0, beta: float = 0.0, name: str
    ) -> Any:
        """Activation by name: relu, sigmoid, tanh, leaky_relu (alpha), clip (alpha..beta), …"""
        key = _ACTIVATIONS.get(kind.lower())
        if key is None:
            raise UsageError(f"unknown activation '{kind}'; use one of {', '.join(_ACTIVATIONS)}")
        layer = self.network.add_activation(x, getattr(self.trt.ActivationType, key))
        layer.alpha, layer.beta = alpha, beta
        return self._named(layer, name)

    def relu(self, x: Any, *, name: str) -> Any:
        """ReLU."""
        return self.activation(x, "relu", name=name)

    def pool(
        self,
        x: Any,
        kind: str,
        kernel_size: IntOrSeq,
        *,
        stride: IntOrSeq | None = None,
        padding: IntOrSeq = 0,
        ceil_mode: bool = False,
        exclude_padding: bool = True,
        name: str,
    ) -> Any:
        """Max or average pooling (``ceil_mode`` rounds the output size up, as Caffe does)."""
        key = _POOLING.get(kind.lower())
        if key is None:
            raise UsageError(f"unknown pooling '{kind}'; use max or avg")
        rank = len(x.shape) - 2
        window = _pair(kernel_size, rank)
        layer = self.network.add_pooling_nd(x, getattr(self.trt.PoolingType, key), window)
        layer.stride_nd = _pair(stride if stride is not None else kernel_size, rank)
        layer.padding_nd = _pair(padding, rank)
        if ceil_mode:
            layer.padding_mode = self.trt.PaddingMode.EXPLICIT_ROUND_UP
        layer.average_count_excludes_padding = exclude_padding
        return self._named(layer, name)

    def fully_connected(
        self, x: Any, out_features: int, *, weight: str, bias: str | None = None, name: str
    ) -> Any:
        """``flatten(x) @ weight.T + bias`` with ``weight`` of shape (out, in).

        Built from a matrix multiply and constants (TensorRT 10 has no fully connected layer).
        """
        flat = self.flatten(x, 1, name=f"{name}/flatten")
        in_features = int(flat.shape[1])
        w = self.weight(weight, (out_features, in_features), x)
        wt = self.constant(w, f"{name}/weight")
        layer = self.network.add_matrix_multiply(
            flat, self.trt.MatrixOperation.NONE, wt, self.trt.MatrixOperation.TRANSPOSE
        )
        if not bias:
            return self._named(layer, name)
        product = self._named(layer, f"{name}/matmul")
        b = self.weight(bias, (1, out_features), x)
        return self.elementwise(product, self.constant(b, f"{name}/bias"), "sum", name=name)

    def elementwise(self, a: Any, b: Any, op: str = "sum", *, name: str) -> Any:
        """Elementwise ``a op b`` (sum, sub, prod, div, max, min, pow) with broadcasting."""
        key = _ELEMENTWISE.get(op.lower())
        if key is None:
            raise UsageError(f"unknown elementwise op '{op}'; use one of {', '.join(_ELEMENTWISE)}")
        layer = self.network.add_elementwise(a, b, getattr(self.trt.ElementWiseOperation, key))
        return self._named(layer, name)

    def concat(self, tensors: Sequence[Any], axis: int = 1, *, name: str) -> Any:
        """Concatenate along ``axis``."""
        layer = self.network.add_concatenation(list(tensors))
        layer.axis = axis % len(tensors[0].shape)
        return self._named(layer, name)

    def reshape(self, x: Any, shape: Sequence[int], *, name: str) -> Any:
        """Reshape (0 copies a dimension, -1 is inferred)."""
        layer = self.network.add_shuffle(x)
        layer.reshape_dims = tuple(int(d) for d in shape)
        return self._named(layer, name)

    def flatten(self, x: Any, axis: int = 1, *, name: str) -> Any:
        """Collapse the dimensions from ``axis`` on into one."""
        dims = tuple(int(d) for d in x.shape)
        if any(d < 0 for d in dims[axis:]):
            raise ShapeError(f"{name}: cannot flatten dynamic dimensions {list(dims)}")
        return self.reshape(
            x, (*([0] * axis), int(np.prod(dims[axis:], dtype=np.int64))), name=name
        )

    def softmax(self, x: Any, axis: int = -1, *, name: str) -> Any:
        """Softmax over one axis."""
        layer = self.network.add_softmax(x)
        layer.axes = 1 << (axis % len(x.shape))
        return self._named(layer, name)
