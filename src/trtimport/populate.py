"""Detect a model's format and populate a TensorRT network with its importer, then check it.

The network's outputs are marked (``--output``), fixed input shapes and shape-tensor values
applied, and dynamic inputs checked against the profiles before anything is built.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from trtimport.build.builder import shape_tensor_inputs
from trtimport.build.engine import TensorInfo
from trtimport.build.trtlog import make_logger
from trtimport.core.backend import Backend, get_backend
from trtimport.core.files import WorkFolder
from trtimport.core.importer import ImportContext, Importer
from trtimport.core.options import BatchRange, ImportOptions, ShapeRange
from trtimport.core.progress import Progress
from trtimport.detect import detect_format
from trtimport.errors import OutputMarkingError, ShapeError, UsageError
from trtimport.onnxtools.dtypes import numpy_name
from trtimport.onnxtools.input_defaults import default_input_shapes, tensor_shape
from trtimport.plugins.manager import ImporterEntry, Plugins, load_plugins


def _tensor_info(tensor: Any, onnx_path: Path | None) -> TensorInfo:
    return TensorInfo(tensor.name, tensor_shape(tensor, onnx_path), numpy_name(tensor.dtype))


@dataclass
class ImportedNetwork:
    """A populated TensorRT network and what made it. Close it (or use ``with``) when done.

    The network, its builder, logger, backend and source are the import context's
    (:attr:`context`); the properties below read them from there.
    """

    format: str
    importer: Importer
    context: ImportContext

    @property
    def source(self) -> Path:
        """The model file or folder that was imported."""
        return self.context.source

    @property
    def backend(self) -> Backend:
        """The TensorRT flavour the network was made with."""
        return self.context.backend

    @property
    def builder(self) -> Any:
        """The TensorRT builder that made the network."""
        return self.context.builder

    @property
    def network(self) -> Any:
        """The populated ``INetworkDefinition``."""
        return self.context.network

    @property
    def logger(self) -> Any:
        """The TensorRT logger of this import."""
        return self.context.logger

    @property
    def plugins(self) -> Plugins:
        """The plugins the import ran with."""
        plugins: Plugins = self.context.plugins
        return plugins

    @property
    def onnx_path(self) -> Path | None:
        """The ONNX file the network was parsed from, if the importer went through ONNX."""
        return self.context.onnx_path

    @property
    def inputs(self) -> list[TensorInfo]:
        """The network's inputs."""
        net = self.network
        return [_tensor_info(net.get_input(i), self.onnx_path) for i in range(net.num_inputs)]

    @property
    def outputs(self) -> list[TensorInfo]:
        """The network's marked outputs."""
        net = self.network
        return [_tensor_info(net.get_output(i), self.onnx_path) for i in range(net.num_outputs)]

    @property
    def num_layers(self) -> int:
        """How many layers the network has."""
        return int(self.network.num_layers)

    @property
    def notes(self) -> list[str]:
        """What the importer told the user."""
        return self.context.notes

    def close(self) -> None:
        """Remove intermediate files."""
        self.context.work.close()

    def __enter__(self) -> ImportedNetwork:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def all_tensors(network: Any) -> dict[str, Any]:
    """Every named tensor of a network: inputs and every layer output."""
    tensors: dict[str, Any] = {}
    for i in range(network.num_inputs):
        t = network.get_input(i)
        tensors[t.name] = t
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        for j in range(layer.num_outputs):
            t = layer.get_output(j)
            if t is not None:
                tensors.setdefault(t.name, t)
    return tensors


def _available(names: list[str], limit: int = 60) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", … ({len(names) - limit} more)" if len(names) > limit else "")


def mark_outputs(network: Any, names: list[str], source: Path) -> None:
    """Make exactly ``names`` the network's outputs (unknown names listed in one error)."""
    tensors = all_tensors(network)
    missing = [n for n in names if n not in tensors]
    if missing:
        raise OutputMarkingError(
            f"{source}: no tensor named {', '.join(repr(n) for n in missing)} (--output). "
            f"Available tensors: {_available(list(tensors))}"
        )
    for i in reversed(range(network.num_outputs)):
        network.unmark_output(network.get_output(i))
    for name in names:
        network.mark_output(tensors[name])


def apply_input_shapes(network: Any, shapes: dict[str, tuple[int, ...]], source: Path) -> None:
    """Fix input shapes given with ``--input NAME:SHAPE``."""
    inputs = {network.get_input(i).name: network.get_input(i) for i in range(network.num_inputs)}
    for name, shape in shapes.items():
        tensor = inputs.get(name)
        if tensor is None:
            raise UsageError(
                f"{source}: --input names '{name}', but the network's inputs are "
                f"{', '.join(inputs) or '(none)'}"
            )
        current = tuple(tensor.shape)
        if len(current) != len(shape):
            raise ShapeError(
                f"{source}: input '{name}' has rank {len(current)} {list(current)}, but --input "
                f"gives rank {len(shape)} {list(shape)}"
            )
        clash = [(c, s) for c, s in zip(current, shape, strict=True) if c >= 0 and c != s]
        if clash:
            raise ShapeError(
                f"{source}: input '{name}' has fixed shape {list(current)}; --input "
                f"{'x'.join(map(str, shape))} changes fixed dimensions"
            )
        tensor.shape = shape


def apply_input_values(network: Any, options: ImportOptions, source: Path) -> ImportOptions:
    """Put ``--input-values`` (fixed values of shape-tensor inputs) into every profile."""
    if not options.input_values:
        return options
    names = [network.get_input(i).name for i in range(network.num_inputs)]
    shape_inputs = shape_tensor_inputs(network)
    for name in options.input_values:
        if name not in names:
            raise UsageError(
                f"{source}: --input-values names '{name}', but the network's inputs are "
                f"{', '.join(names) or '(none)'}"
            )
        if name not in shape_inputs:
            raise UsageError(
                f"{source}: input '{name}' is not a shape tensor, so it takes no "
                f"--input-values here (only ONNX-based models, without --no-rewrite, fold "
                f"an input's values in); fix its shape with --input {name}:SHAPE instead"
            )
        if any(name in profile for profile in options.profiles):
            raise UsageError(
                f"{source}: input '{name}' has both --input-values and a --shapes/--profile "
                "range; give one of them"
            )
    fixed = {name: ShapeRange(v, v, v) for name, v in options.input_values.items()}
    profiles = [{**profile, **fixed} for profile in options.profiles] or [fixed]
    return replace(options, profiles=profiles)


def check_dynamic_inputs(network: Any, options: ImportOptions, source: Path) -> None:
    """Every dynamic or shape-tensor input must be covered by every profile, consistently."""
    inputs = [network.get_input(i) for i in range(network.num_inputs)]
    shape_inputs = shape_tensor_inputs(network)
    dynamic = {t.name: tuple(t.shape) for t in inputs if any(d < 0 for d in t.shape)}
    names = {t.name: tuple(t.shape) for t in inputs}
    for k, profile in enumerate(options.profiles):
        for name, rng in profile.items():
            if name not in names:
                raise UsageError(
                    f"{source}: --shapes names '{name}', but the network's inputs are "
                    f"{', '.join(names) or '(none)'}"
                )
            if name in shape_inputs:
                if len(rng.min) != shape_inputs[name]:
                    raise ShapeError(
                        f"{source}: input '{name}' is a shape tensor holding "
                        f"{shape_inputs[name]} value(s); the range given for it has "
                        f"{len(rng.min)}"
                    )
                continue
            shape = names[name]
            if len(rng.min) != len(shape):
                raise ShapeError(
                    f"{source}: input '{name}' has rank {len(shape)} {list(shape)}, but the "
                    f"shapes given for it have rank {len(rng.min)}"
                )
            for bound in (rng.min, rng.max):
                if any(d >= 0 and d != b for d, b in zip(shape, bound, strict=True)):
                    raise ShapeError(
                        f"{source}: input '{name}' has shape {list(shape)}; --shapes may only "
                        "vary its dynamic (-1) dimensions"
                    )
        uncovered = [n for n in dynamic if n not in profile and n not in shape_inputs]
        if uncovered:
            raise UsageError(
                f"{source}: profile {k + 1} gives no shapes for dynamic input(s) "
                + ", ".join(f"'{n}' {list(dynamic[n])}" for n in uncovered)
            )
        no_values = [n for n in shape_inputs if n not in profile]
        if no_values:
            raise UsageError(_shape_input_hint(source, no_values, f"profile {k + 1}"))
    if shape_inputs and not options.profiles:
        raise UsageError(_shape_input_hint(source, list(shape_inputs), "the build"))
    if dynamic and not options.profiles:
        lines = [f"'{n}' {list(s)}" for n, s in dynamic.items()]
        example = next(iter(dynamic))
        raise UsageError(
            f"{source}: the network has dynamic input(s) {', '.join(lines)}. Give fixed shapes "
            f"with --input {example}:1x… or ranges with --shapes {example}:MIN/OPT/MAX."
        )


def _shape_input_hint(source: Path, names: list[str], where: str) -> str:
    example = names[0]
    return (
        f"{source}: {where} needs the values of shape-tensor input(s) "
        f"{', '.join(repr(n) for n in names)} (their values set other tensors' shapes). Give "
        f"them with --input-values {example}:V1,V2,… or a range with --shapes "
        f"{example}:MIN/OPT/MAX (values, not a shape)."
    )


def import_model(
    model: str | Path,
    *,
    options: ImportOptions | None = None,
    plugins: Plugins | None = None,
    backend: Backend | str | None = None,
    verbosity: int = 0,
    progress: Progress | None = None,
) -> ImportedNetwork:
    """Detect the format, populate a TensorRT network, mark outputs and check input shapes.

    The returned :class:`ImportedNetwork` holds the builder and network; close it when done.
    Long work (a tf2onnx conversion) reports to ``progress``.
    """
    options = options or ImportOptions()
    source = Path(model)
    plugins = plugins or load_plugins()
    entry = detect_format(source, plugins, options.format)
    return import_detected(entry, source, options, plugins, backend, verbosity, progress)


#: How many imports this process has started (see :func:`_collect_earlier_imports`).
_imports_started = 0


def _collect_earlier_imports() -> None:
    """Free, now, what is left of earlier imports that only the garbage collector can reach.

    A failed import's builder and network can stay alive in a reference cycle through the
    error's traceback (a frame that keeps the error it caught). Left to the collector, they
    are destroyed whenever it next runs, which can be inside a TensorRT call: the collector
    runs when Python allocates, and TensorRT calls our Python logger. TensorRT-RTX 1.7 then
    deadlocks: destroying an IBuilder waits for a lock that the running call (creating the
    next builder, say) holds. Seen once in a worker building ONNX node cases one after
    another. Collecting before each new builder is made removes such leftovers at a safe
    point; the first import in a process has nothing to collect and skips the cost.
    """
    global _imports_started
    if _imports_started:
        gc.collect()
    _imports_started += 1


def _pinned_values(network: Any, options: ImportOptions) -> dict[str, tuple[int, ...]]:
    """``--input-values`` of inputs that are not shape tensors: their values are folded in."""
    names = {network.get_input(i).name for i in range(network.num_inputs)}
    shape_inputs = shape_tensor_inputs(network)
    return {k: v for k, v in options.input_values.items() if k in names and k not in shape_inputs}


def complete_import(
    imported: ImportedNetwork, options: ImportOptions, batch_ranges: list[BatchRange]
) -> None:
    """After the network is populated: profiles, outputs, input shapes and values, checks.

    Runs again on a rewritten graph (:mod:`trtimport.onnxtools.rescue`), from the options
    the user gave.
    """
    ctx = imported.context
    source = imported.source
    network = ctx.network
    ctx.options = options
    pinned = _pinned_values(network, options) if ctx.onnx_path is not None else {}
    if pinned and options.rewrite:
        from trtimport.onnxtools.rescue import rescue

        rescue(
            ctx,
            UsageError(f"{source}: input(s) {', '.join(pinned)} pinned with --input-values"),
            shapes=dict(options.input_shapes),
            values=pinned,
        )
        complete_import(imported, ctx.options, batch_ranges)
        return
    if batch_ranges:
        from trtimport.onnxtools.passes.batch import batch_profiles

        ctx.options = replace(options, profiles=batch_profiles(network, batch_ranges, str(source)))
    if options.outputs:
        mark_outputs(network, options.outputs, source)
    if network.num_outputs == 0:
        raise OutputMarkingError(
            f"{source}: the network has no outputs. Mark some with --output NAME; "
            f"available tensors: {_available(list(all_tensors(network)))}"
        )
    apply_input_shapes(network, options.input_shapes, source)
    ctx.options = apply_input_values(network, ctx.options, source)
    if not ctx.options.profiles:
        ctx.default_shapes, note = default_input_shapes(
            network, ctx.onnx_path, shape_tensor_inputs(network), source
        )
        if note:
            ctx.note(note)
    check_dynamic_inputs(network, ctx.options, source)


def import_detected(
    entry: ImporterEntry,
    source: Path,
    options: ImportOptions,
    plugins: Plugins,
    backend: Backend | str | None,
    verbosity: int,
    progress: Progress | None = None,
) -> ImportedNetwork:
    """:func:`import_model` once the importer is known."""
    importer = entry.importer
    missing = importer.missing_requirements()
    if missing:
        from trtimport.errors import MissingDependencyError

        raise MissingDependencyError(
            f"Importing {importer.name} models", importer.extra or "all", module=missing[0]
        )
    if options.weights is not None and not importer.takes_weights:
        raise UsageError(f"--weights: the {importer.name} importer takes no separate weights")
    batch_ranges: list[BatchRange] = []
    if options.batch is not None or options.more_batches:
        from trtimport.onnxtools.passes.batch import check_batch_options

        batch_ranges = check_batch_options(options)
    be = backend if isinstance(backend, Backend) else get_backend(backend)
    logger = make_logger(be, verbosity)
    _collect_earlier_imports()
    builder = be.trt.Builder(logger)
    network = builder.create_network(be.network_flags)
    ctx = ImportContext(
        source,
        options,
        be,
        builder,
        network,
        logger,
        WorkFolder(),
        plugins=plugins,
        progress=progress or Progress(),
    )
    imported = ImportedNetwork(importer.name, importer, ctx)
    try:
        importer.populate(ctx)
        if ctx.onnx_path is None and (batch_ranges or options.precision.active):
            raise UsageError(
                "--batch, --precision and --int8 rewrite ONNX models; the "
                f"{importer.name} importer builds the network directly. Set layer types in "
                "the network itself, and give input ranges with --shapes/--profile"
            )
        complete_import(imported, options, batch_ranges)
    except BaseException:
        imported.close()
        raise
    return imported
