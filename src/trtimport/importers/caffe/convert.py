"""Convert a loaded Caffe net to an ONNX file.

Names: ONNX node names are Caffe layer names and ONNX tensor names are Caffe blob names.
Caffe lets a layer write its result into its bottom (``top: "conv1"`` on a ReLU whose bottom
is ``conv1``); ONNX needs every tensor written once. The rule: **the last write of a blob keeps
the blob's name; every earlier write is named ``blob/layer``** after the layer that wrote it
(a net-level ``input:`` counts as the layer ``input``). So in ``conv1 -> relu1 (in place)``, the
convolution's output is ``conv1/conv1`` and ``conv1`` is the value after ``relu1`` — the value
Caffe's blob ``conv1`` holds after a forward pass — and ``--output conv1`` means what it means in
Caffe.

Every layer type without a converter, and every layer whose parameters a converter cannot
map, is collected and reported in one :class:`UnsupportedLayerError`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from trtimport.errors import (
    InternalError,
    ModelParseError,
    OutputMarkingError,
    PluginLoadError,
    ShapeError,
    TrtImportError,
    UsageError,
)
from trtimport.importers.caffe.parse import CaffeModel, bottom_problems, describe_layer
from trtimport.importers.caffe.problems import NetProblems
from trtimport.importers.caffe.ranges import (
    Dim,
    LayerEmission,
    check_ranks,
    first_difference,
    merged_dims,
    needs_ranges,
    range_error,
    range_points,
)
from trtimport.importers.caffe.registry import (
    ConverterRegistry,
    LayerContext,
    LayerNotSupported,
    Registration,
    build_registry,
)
from trtimport.onnxtools import encode
from trtimport.onnxtools.graph import GraphBuilder, Shape, unique_name

if TYPE_CHECKING:
    from trtimport.core.options import Profile
    from trtimport.plugins.manager import Plugins

DEFAULT_OPSET = 17
#: Opsets the converters know how to spell (ONNX Runtime and TensorRT's parser read them all).
SUPPORTED_OPSETS = range(13, 22)
#: The plugin name of the built-in converters (errors from them are bugs, not plugin failures).
BUILTIN_ORIGIN = "trtimport.importers.caffe"
#: A net-level ``input:`` is written by this pseudo-layer for naming purposes.
INPUT_WRITER = "input"


@dataclass
class Conversion:
    """What :func:`caffe_to_onnx` wrote."""

    path: Path
    #: Input and output shapes (converted for ranges: at the first profile's OPT).
    inputs: dict[str, Shape]
    outputs: dict[str, Shape]
    #: Every tensor name the graph has for a Caffe blob value (``conv1/conv1``, ``conv1``, …).
    tensors: list[str] = field(default_factory=list)
    opset: int = DEFAULT_OPSET
    #: Converted for ranges: the declared dimensions of each input and output that has a
    #: symbolic one (``["data_batch", 3, "data_height", "data_width"]``; None: unknown).
    symbolic: dict[str, list[Dim]] = field(default_factory=dict)


@dataclass
class TensorNames:
    """Per layer: the ONNX names of its bottoms and tops after single-assignment renaming."""

    layers: list[str]
    bottoms: list[list[str]]
    tops: list[list[str]]
    #: Graph input name -> Caffe blob.
    inputs: dict[str, str]
    types: list[str] = field(default_factory=list)

    def outputs(self, keep: set[int] | None = None) -> list[str]:
        """The net's outputs: tensors no (kept) layer consumes, in layer order."""
        kept = sorted(range(len(self.tops)) if keep is None else keep)
        consumed = {b for i in kept for b in self.bottoms[i]}
        return [
            t for i in kept if self.types[i] != "Input" for t in self.tops[i] if t not in consumed
        ]

    def producer(self, tensor: str) -> tuple[str, int] | None:
        """(layer name, top index) of the layer that writes ``tensor``; None for inputs."""
        for layer, tops in zip(self.layers, self.tops, strict=True):
            if tensor in tops:
                return layer, tops.index(tensor)
        return None


def tensor_names(model: CaffeModel) -> TensorNames:
    """The ONNX tensor names of every blob value, by the in-place renaming rule."""
    layers = list(model.net.layer)
    input_layer_tops = {t for layer in layers if layer.type == "Input" for t in layer.top}
    net_inputs = [n for n in model.input_shapes if n not in input_layer_tops]
    writes: list[tuple[str, str]] = [(n, INPUT_WRITER) for n in net_inputs]
    for layer in layers:
        writes += [(t, layer.name) for t in layer.top]
    last = {blob: i for i, (blob, _) in enumerate(writes)}
    taken = {blob for blob, _ in writes}
    names: list[str] = []
    for i, (blob, writer) in enumerate(writes):
        if last[blob] == i:
            names.append(blob)
            continue
        names.append(unique_name(f"{blob}/{writer}", taken))
    current: dict[str, str] = {}
    inputs: dict[str, str] = {}
    for blob, name in zip(net_inputs, names, strict=False):
        current[blob] = name
        inputs[name] = blob
    pos = len(net_inputs)
    plan = TensorNames([], [], [], inputs)
    for layer in layers:
        plan.layers.append(layer.name)
        plan.types.append(layer.type)
        plan.bottoms.append([current.get(b, b) for b in layer.bottom])
        tops = names[pos : pos + len(layer.top)]
        pos += len(layer.top)
        for blob, name in zip(layer.top, tops, strict=False):
            current[blob] = name
            if layer.type == "Input":
                inputs[name] = blob
        plan.tops.append(tops)
    return plan


def _needed_layers(plan: TensorNames, requested: Sequence[str], source: object) -> set[int]:
    """Layers needed for ``requested`` tensors (blob names mean their final value)."""
    producer = {name: i for i, tops in enumerate(plan.tops) for name in tops}
    known = set(producer) | set(plan.inputs)
    missing = [r for r in requested if r not in known]
    if missing:
        listing = ", ".join(sorted(known))
        raise OutputMarkingError(
            f"{source}: no tensor named {', '.join(repr(m) for m in missing)} (--output). "
            f"Available tensors: {listing}"
        )
    needed: set[int] = set()
    stack = [producer[r] for r in requested if r in producer]
    while stack:
        i = stack.pop()
        if i in needed:
            continue
        needed.add(i)
        stack += [producer[b] for b in plan.bottoms[i] if b in producer]
    return needed


def _run_converter(registration: Registration, ctx: LayerContext) -> list[Shape]:
    """Run one converter; a plugin's crash becomes a PluginLoadError naming the plugin."""
    try:
        result = registration.converter(ctx)
    except (LayerNotSupported, TrtImportError):
        raise
    except Exception as err:
        if registration.origin == BUILTIN_ORIGIN:
            raise
        raise PluginLoadError(
            f"the converter for Caffe layer type '{ctx.type}' from plugin "
            f"'{registration.origin}' failed on {ctx.describe()}: {type(err).__name__}: {err}"
        ) from err
    shapes = [tuple(int(d) for d in s) for s in result]
    if len(shapes) != len(ctx.outputs):
        error = InternalError if registration.origin == BUILTIN_ORIGIN else PluginLoadError
        raise error(
            f"the converter for '{ctx.type}' ({registration.origin}) returned {len(shapes)} "
            f"shapes for the {len(ctx.outputs)} tops of {ctx.describe()}"
        )
    return shapes


def caffe_to_onnx(
    model: CaffeModel,
    dest: Path,
    opset: int | None = None,
    plugins: Plugins | None = None,
    *,
    outputs: Sequence[str] = (),
    registry: ConverterRegistry | None = None,
    link_weights: bool = False,
    profiles: Sequence[Profile] = (),
) -> Conversion:
    """Convert ``model`` to an ONNX file at ``dest`` (written atomically).

    ``outputs`` (tensor names; blob names mean their final value) limits the graph to what
    those outputs need and makes them the graph's outputs, so a net can be converted up to a
    layer that has no mapping. Converters come from ``registry`` or from ``plugins`` (default:
    every installed plugin plus the built-ins). Every problem of the net (unknown fields,
    layers without a converter, shape errors) is reported in one error; a net whose layers
    need weights that ``model`` lacks is checked first, then refused with the make-weights hint.
    ``link_weights=True`` writes an intermediate file for TensorRT's parser: the blobs that are
    stored as they are stay in the caffemodel, which the ONNX file refers to through a link
    beside it (:func:`.writer.write_onnx`). ``profiles`` (``--shapes`` ranges, :mod:`.ranges`)
    that give an input several shapes make its varying dimensions symbolic: the net is converted
    and checked at each MIN, OPT and MAX, and refused, naming the layer, if its ONNX depends on
    the size.
    """
    built = _build_for(model, opset, plugins, outputs, registry, profiles)
    if model.requested_blobs:
        raise ModelParseError(weights_needed_message(model))
    from trtimport import __version__
    from trtimport.onnxtools.writer import write_onnx

    net_name = model.net.name or (model.prototxt.stem if model.prototxt else "caffe")
    write_onnx(
        Path(dest),
        built.graph.graph(net_name),
        built.graph.initializers,
        opset=built.opset,
        producer="trtimport",
        producer_version=__version__,
        link_mapped=link_weights,
    )
    return Conversion(
        path=Path(dest),
        inputs=built.inputs,
        outputs=built.outputs,
        tensors=built.tensors,
        opset=built.opset,
        symbolic=built.symbolic,
    )


def check_caffe(
    model: CaffeModel,
    plugins: Plugins | None = None,
    *,
    outputs: Sequence[str] = (),
    registry: ConverterRegistry | None = None,
    profiles: Sequence[Profile] = (),
) -> dict[str, Shape]:
    """Convert ``model`` in memory and raise every problem at once; weights are not needed.

    Without weights, converters get zero blobs of the shapes they ask for (recorded in
    ``model.requested_blobs``). ``profiles`` are checked as :func:`caffe_to_onnx` does. Returns
    the output shapes.
    """
    return _build_for(model, None, plugins, outputs, registry, profiles).outputs


def weights_needed_message(model: CaffeModel) -> str:
    """What to do when a checked net has no weights for the layers that need them."""
    source = model.prototxt or "the net"
    layers = list(model.requested_blobs)
    shown = ", ".join(layers[:6]) + (" …" if len(layers) > 6 else "")
    return (
        f"{source}: the structure is fine, but {len(layers)} layer(s) need weights ({shown}) "
        "and a prototxt holds none. Pass the trained weights with --weights MODEL.caffemodel "
        "(layer names must match), or make seeded random weights to try the structure: "
        f"`trtimport caffe make-weights {source} -o random.caffemodel --seed 0`"
    )


@dataclass
class _Built:
    graph: GraphBuilder
    opset: int
    inputs: dict[str, Shape]
    outputs: dict[str, Shape]
    tensors: list[str]
    #: Per converted layer, what it emitted (recorded in dynamic mode, for :mod:`.ranges`).
    emissions: list[LayerEmission] = field(default_factory=list)
    symbolic: dict[str, list[Dim]] = field(default_factory=dict)


def _build_for(
    model: CaffeModel,
    opset: int | None,
    plugins: Plugins | None,
    outputs: Sequence[str],
    registry: ConverterRegistry | None,
    profiles: Sequence[Profile],
) -> _Built:
    """:func:`_build`, or for ranges :func:`_build_ranges` (one graph checked at each size)."""
    if not needs_ranges(profiles, model.input_shapes):
        return _build(model, opset, plugins, outputs, registry)
    registry = registry or build_registry(plugins)
    return _build_ranges(
        model, profiles, lambda: _build(model, opset, plugins, outputs, registry, dynamic=True)
    )


def _build_ranges(
    model: CaffeModel, profiles: Sequence[Profile], build: Callable[[], _Built]
) -> _Built:
    """Convert at every MIN/OPT/MAX in dynamic mode; one graph with symbolic dimensions."""
    source = model.prototxt or model.caffemodel
    declared = dict(model.input_shapes)
    check_ranks(source, profiles, declared)
    builds: list[tuple[str, _Built]] = []
    try:
        for point in range_points(profiles, declared):
            model.input_shapes.update(point.shapes)
            try:
                builds.append((point.label, build()))
            except TrtImportError as err:
                if not builds:
                    raise  # the net does not convert at OPT: its own problems, as they are
                sizes = ", ".join(f"{n} {'x'.join(map(str, s))}" for n, s in point.shapes.items())
                reason = f"the net does not convert at {point.label} ({sizes})"
                raise range_error(source, profiles, declared, reason, str(err)) from err
    finally:
        model.input_shapes.update(declared)
    (label, built), others = builds[0], builds[1:]
    for other_label, other in others:
        layer = first_difference(built.emissions, other.emissions)
        if layer is not None:
            raise range_error(
                source,
                profiles,
                declared,
                f"{describe_layer(model, layer)} is converted differently at {label} and "
                f"{other_label} (its operators or constants are computed from the size), so "
                "one engine cannot take the range",
            )
    every = [built] + [b for _, b in others]

    def declare(name: str, shapes: list[Shape]) -> bytes:
        dims = merged_dims(name, shapes)
        if dims is not None and any(isinstance(d, str) for d in dims):
            built.symbolic[name] = dims
        return encode.value_info(name, encode.data_type(np.float32), dims)

    if len(built.graph.inputs) != len(built.inputs):
        raise InternalError(f"{source}: the graph declares inputs other than the net's")
    built.graph.inputs = [declare(n, [b.inputs[n] for b in every]) for n in built.inputs]
    built.graph.outputs = [declare(n, [b.outputs[n] for b in every]) for n in built.outputs]
    return built


def _build(
    model: CaffeModel,
    opset: int | None,
    plugins: Plugins | None,
    outputs: Sequence[str],
    registry: ConverterRegistry | None,
    *,
    dynamic: bool = False,
) -> _Built:
    opset = DEFAULT_OPSET if opset is None else int(opset)
    if opset not in SUPPORTED_OPSETS:
        raise UsageError(
            f"--opset {opset}: the Caffe converter emits opsets {SUPPORTED_OPSETS.start}-"
            f"{SUPPORTED_OPSETS.stop - 1}"
        )
    registry = registry or build_registry(plugins)
    report = NetProblems(model)
    report.wiring += bottom_problems(model)
    layers = list(model.net.layer)
    plan = tensor_names(model)
    keep = set(range(len(layers)))
    if outputs:
        keep = _needed_layers(plan, outputs, model.prototxt or model.caffemodel)

    reserved = {n for tops in plan.tops for n in tops} | set(plan.inputs)
    graph = GraphBuilder(reserved_tensors=reserved)
    shapes: dict[str, Shape] = {}
    emissions: list[LayerEmission] = []
    for name, blob in plan.inputs.items():
        if blob in model.input_shapes and name not in {t for i in keep for t in plan.tops[i]}:
            graph.add_input(name, model.input_shapes[blob])
            shapes[name] = model.input_shapes[blob]
    for i in sorted(keep):
        layer, tops = layers[i], plan.tops[i]
        bottoms = plan.bottoms[i]
        registration = registry.get(layer.type)
        if registration is None:
            report.no_converter(layer)
            continue
        if any(b not in shapes for b in bottoms):
            continue  # fed by a layer that failed; that layer is reported
        unshaped = [t for t in layer.top if layer.type == "Input" and not model.input_shapes[t]]
        if unshaped:
            report.no_shape(layer, unshaped)
            continue
        ctx = LayerContext(
            layer=layer,
            inputs=list(bottoms),
            outputs=list(tops),
            input_shapes=[shapes[b] for b in bottoms],
            graph=graph,
            model=model,
            opset=opset,
            dynamic=dynamic,
        )
        first_node, first_constant = len(graph.nodes), len(graph.initializers)
        try:
            result = _run_converter(registration, ctx)
        except LayerNotSupported as err:
            report.unsupported.append(str(err))
            report.types.append(layer.type)
            continue
        except (ShapeError, ModelParseError) as err:
            report.shapes.append(str(err))
            continue
        shapes.update(zip(tops, result, strict=True))
        if dynamic:
            constants = list(islice(graph.initializers.values(), first_constant, None))
            emissions.append(LayerEmission(layer.name, graph.nodes[first_node:], constants))
    report.raise_if_any()

    out_names = list(outputs) or [t for t in plan.outputs(keep) if t in shapes]
    if not out_names:
        raise OutputMarkingError(
            f"{model.prototxt or model.caffemodel}: the net has no outputs (every blob is "
            "consumed); name some with --output"
        )
    for name in out_names:
        graph.add_output(name, shapes.get(name))
    return _Built(
        graph=graph,
        opset=opset,
        inputs={n: shapes[n] for n in plan.inputs if n in shapes},
        outputs={n: shapes[n] for n in out_names if n in shapes},
        tensors=[n for i in sorted(keep) for n in plan.tops[i] if n in shapes],
        emissions=emissions,
    )
