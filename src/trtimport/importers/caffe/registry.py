"""The registry of Caffe layer converters, keyed by Caffe layer type.

A converter turns one Caffe layer into ONNX nodes. It is a plain function::

    def convert(ctx: LayerContext) -> list[Shape]:
        ...

It reads the layer (``ctx.layer``, the ``caffe_pb2.LayerParameter``), the ONNX names and shapes of
its bottoms (``ctx.inputs``, ``ctx.input_shapes``) and its weight blobs (``ctx.blob(i)``), emits
nodes with ``ctx.node(...)`` / ``ctx.op(...)`` writing the names in ``ctx.outputs`` (one per
top), and returns the shape of every top. With ``ctx.dynamic`` the input sizes vary at run time
and the emitted ONNX must not depend on them (a layer whose ONNX does is named in the refusal).
Parameters it cannot map raise ``ctx.unsupported("why")``; conversion collects those from every
layer before failing.

Built-in converters and plugin converters are registered the same way, through the
``trtimport_register_caffe_layers(register)`` hook; ``register(layer_type, converter)`` refuses a
type that is already registered and names both registrants.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from trtimport.errors import PluginLoadError, ShapeError
from trtimport.importers.caffe.parse import CaffeModel, blob_as, describe_layer, require_blobs
from trtimport.onnxtools.graph import GraphBuilder, Shape

if TYPE_CHECKING:
    from trtimport.plugins.manager import PluginOrigin, Plugins

__all__ = [
    "Converter",
    "ConverterRegistry",
    "LayerContext",
    "LayerNotSupported",
    "Shape",
    "build_registry",
]


class LayerNotSupported(Exception):
    """Raised by a converter for a parameter combination it cannot map (collected, not fatal)."""


@dataclass
class LayerContext:
    """What a converter gets: the layer, its bottoms and tops, its weights, and the graph."""

    #: The Caffe ``LayerParameter`` (V2 form).
    layer: Any
    #: ONNX tensor names of the bottoms, in order.
    inputs: list[str]
    #: ONNX tensor names the converter must write, one per top, in order.
    outputs: list[str]
    #: Shapes of the bottoms (batch dimension as in the prototxt).
    input_shapes: list[Shape]
    #: The graph being built.
    graph: GraphBuilder
    #: The model being converted (weights, prototxt lines).
    model: CaffeModel
    #: The ONNX opset being emitted.
    opset: int = 17
    #: True when input sizes vary at run time (``--shapes`` ranges): the net is converted at
    #: each MIN/OPT/MAX and must give the same ONNX at every size, so a converter reads sizes
    #: in the graph (Shape, Slice) instead of baking them into constants or attributes. The
    #: shapes it returns are still those of the current conversion, checked at each size.
    dynamic: bool = False

    @property
    def name(self) -> str:
        """The layer's name."""
        return str(self.layer.name)

    @property
    def type(self) -> str:
        """The layer's type."""
        return str(self.layer.type)

    @property
    def blobs(self) -> list[np.ndarray]:
        """The layer's weight blobs (float32), as stored in the caffemodel."""
        return self.model.weights.get(self.name, [])

    def describe(self) -> str:
        """``layer 'conv1' (Convolution, deploy.prototxt:12)`` for messages."""
        return describe_layer(self.model, self.name)

    def node(
        self, op: str, inputs: Sequence[str], outputs: int | Sequence[str] = 1, **attrs: Any
    ) -> list[str]:
        """Emit a node; ``outputs`` is a count of fresh names or explicit names. Returns them.

        A node that writes one of the layer's tops is named after the layer; helper nodes are
        named ``layer/Op``.
        """
        if isinstance(outputs, int):
            outs = [self.graph.fresh(f"{self.name}/{op}") for _ in range(outputs)]
        else:
            outs = list(outputs)
        writes_top = any(o in self.outputs for o in outs)
        node_name = self.name if writes_top else f"{self.name}/{op}"
        self.graph.node(op, inputs, outs, name=node_name, **attrs)
        return outs

    def op(self, op: str, *inputs: str, out: str | None = None, **attrs: Any) -> str:
        """Emit a one-output node and return its output (``out``, or a fresh name)."""
        return self.node(op, inputs, [out] if out else 1, **attrs)[0]

    def const(self, value: Any, hint: str) -> str:
        """Add a constant named ``layer/hint`` (float64 stored as float32)."""
        return self.graph.const(value, f"{self.name}/{hint}")

    def ints(self, values: Sequence[int], hint: str) -> str:
        """Add an int64 1-D constant named ``layer/hint``."""
        return self.graph.ints(values, f"{self.name}/{hint}")

    def blob(self, index: int, shape: Shape | None = None) -> np.ndarray:
        """Weight blob ``index`` as float32, checked against and reshaped to ``shape``.

        A missing blob or one whose shape does not fit (legacy 4-D blobs do) is an error naming
        the layer, the expected and the found shape.
        """
        if not self.model.has_weights:
            return self._placeholder_blob(index, shape)
        if shape is None:
            if index >= len(self.blobs):
                require_blobs(self.model, self.name, index + 1)
            return np.asarray(self.blobs[index], dtype=np.float32)
        return np.asarray(blob_as(self.model, self.name, index, shape), dtype=np.float32)

    def _placeholder_blob(self, index: int, shape: Shape | None) -> np.ndarray:
        """Zeros standing in for a blob while a net without weights is checked; recorded."""
        if shape is None:
            raise self.unsupported(
                f"the converter reads weight blob {index} without saying its shape, so the net "
                "cannot be checked without weights"
            )
        self.model.requested_blobs.setdefault(self.name, {})[index] = tuple(shape)
        return np.zeros(shape, np.float32)

    def unsupported(self, reason: str) -> LayerNotSupported:
        """An error for a parameter this converter cannot map; ``raise`` it."""
        return LayerNotSupported(f"{self.describe()}: {reason}")

    def shape_error(self, message: str) -> ShapeError:
        """A :class:`ShapeError` naming this layer; ``raise`` it."""
        return ShapeError(f"{self.describe()}: {message}")


#: A converter: emits the layer's nodes and returns one shape per top.
Converter = Callable[[LayerContext], Sequence[Shape]]


@dataclass(frozen=True)
class Registration:
    """A converter and the plugin that registered it."""

    converter: Converter
    origin: str


class ConverterRegistry:
    """Layer type -> converter; registering a type twice is an error naming both registrants."""

    def __init__(self) -> None:
        self._entries: dict[str, Registration] = {}

    def register(self, layer_type: str, converter: Converter, *, origin: str = "") -> None:
        """Add ``converter`` for ``layer_type`` (refuses duplicates)."""
        if not isinstance(layer_type, str) or not layer_type or not callable(converter):
            raise PluginLoadError(
                f"plugin '{origin}' registered Caffe layer {layer_type!r} with {converter!r}: "
                "expected register(layer_type: str, converter: callable)"
            )
        existing = self._entries.get(layer_type)
        if existing is not None:
            raise PluginLoadError(
                f"Caffe layer type '{layer_type}' is registered twice: by '{existing.origin}' "
                f"and by '{origin}'. Uninstall one plugin or leave it out with TRTIMPORT_PLUGINS."
            )
        self._entries[layer_type] = Registration(converter, origin)

    def get(self, layer_type: str) -> Registration | None:
        """The registration for ``layer_type``, if any."""
        return self._entries.get(layer_type)

    def types(self) -> list[str]:
        """Every registered layer type, sorted."""
        return sorted(self._entries)

    def __contains__(self, layer_type: object) -> bool:
        return layer_type in self._entries


def build_registry(plugins: Plugins | None = None) -> ConverterRegistry:
    """Collect every plugin's converters (the built-ins come from the Caffe importer plugin)."""
    from trtimport.plugins.manager import load_plugins, walk_registrations

    plugins = plugins or load_plugins()
    registry = ConverterRegistry()

    def make_register(origin: PluginOrigin) -> Callable[..., None]:
        def register(layer_type: str, converter: Converter) -> None:
            registry.register(layer_type, converter, origin=origin[0])

        return register

    walk_registrations(plugins, "trtimport_register_caffe_layers", "Caffe layers", make_register)
    return registry
