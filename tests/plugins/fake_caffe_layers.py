"""Fake plugins that register Caffe layer converters (for tests/importers/caffe/)."""

from __future__ import annotations

from collections.abc import Callable

from trtimport import hookimpl
from trtimport.importers.caffe.registry import LayerContext, Shape


def convert_mish(ctx: LayerContext) -> list[Shape]:
    """Mish (a common fork layer): x * tanh(softplus(x))."""
    x = ctx.inputs[0]
    ctx.op("Mul", x, ctx.op("Tanh", ctx.op("Softplus", x)), out=ctx.outputs[0])
    return [ctx.input_shapes[0]]


class MishPlugin:
    """Registers a converter for the custom layer type ``Mish``."""

    @hookimpl
    def trtimport_register_caffe_layers(self, register: Callable[..., None]) -> None:
        register("Mish", convert_mish)


class ReluOverridePlugin:
    """Tries to register ``ReLU``, which the built-ins already provide."""

    @hookimpl
    def trtimport_register_caffe_layers(self, register: Callable[..., None]) -> None:
        register("ReLU", convert_mish)


class BrokenConverterPlugin:
    """Registers a converter that raises, to test how plugin failures are reported."""

    @hookimpl
    def trtimport_register_caffe_layers(self, register: Callable[..., None]) -> None:
        register("Mish", lambda ctx: 1 / 0)


class ShapelessConverterPlugin:
    """Registers a converter that emits its node but returns no top shapes."""

    @hookimpl
    def trtimport_register_caffe_layers(self, register: Callable[..., None]) -> None:
        def convert(ctx: LayerContext) -> list[Shape]:
            convert_mish(ctx)
            return []

        register("Mish", convert)
