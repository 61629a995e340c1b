"""``convert``: detect -> populate (:mod:`trtimport.populate`) -> build -> save engine, sidecar."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from trtimport.build.builder import (
    build_serialized,
    make_config,
    resolved_targets,
    save_timing_cache,
    shape_tensor_inputs,
    targets_left_out,
)
from trtimport.build.engine import (
    TensorInfo,
    make_sidecar,
    recorded_sources,
    sidecar_path,
    write_engine,
)
from trtimport.core.backend import Backend
from trtimport.core.files import (
    BackgroundHashes,
    SignalsHeld,
    atomic_path,
    start_dropping_cached_pages,
)
from trtimport.core.options import BuildOptions, ImportOptions
from trtimport.core.progress import CancelOnly, Progress
from trtimport.detect import detect_format
from trtimport.errors import EngineBuildError, UsageError
from trtimport.plugins.manager import ImporterEntry, Plugins, load_plugins
from trtimport.populate import ImportedNetwork, complete_import, import_detected


@dataclass
class ConvertResult:
    """What :func:`convert` made: the facts the CLI summary and ``--json`` print."""

    model: Path
    format: str
    backend: str
    backend_version: str
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    layers: int
    targets: list[str]
    build_seconds: float | None = None
    engine: Path | None = None
    engine_bytes: int | None = None
    onnx: Path | None = None
    files_written: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (what ``--json`` prints)."""
        return {
            "model": str(self.model),
            "format": self.format,
            "backend": {"name": self.backend, "version": self.backend_version},
            "inputs": [t.as_dict() for t in self.inputs],
            "outputs": [t.as_dict() for t in self.outputs],
            "layers": self.layers,
            "targets": self.targets,
            "build_seconds": self.build_seconds,
            "engine": str(self.engine) if self.engine else None,
            "engine_bytes": self.engine_bytes,
            "onnx": str(self.onnx) if self.onnx else None,
            "files_written": [str(p) for p in self.files_written],
            "notes": self.notes,
        }


def default_engine_path(model: Path) -> Path:
    """``path/to/model.onnx`` -> ``./model.engine`` (in the current folder)."""
    stem = model.name if model.is_dir() else model.stem
    return Path.cwd() / f"{stem or 'model'}.engine"


def _targets_built(imported: ImportedNetwork, targets: list[str], notes: list[str]) -> list[str]:
    """``targets`` without those the (portable) build left out; a note says which and why."""
    left_out = targets_left_out(imported.logger)
    kept = [t for t in targets if t not in left_out]
    if left_out:
        reasons = sorted(set(left_out.values()))
        notes.append(
            f"{imported.backend.name} left {', '.join(sorted(left_out))} out of the portable "
            f"targets ({'; '.join(reasons)}): the engine runs on {', '.join(kept) or 'none'} "
            "only"
        )
    return kept


def _build(
    imported: ImportedNetwork, build_options: BuildOptions, progress: Progress | None
) -> tuple[Any, float, Any]:
    """Build the imported network: (serialized engine, seconds, timing cache)."""
    config, cache = make_config(
        imported.backend,
        imported.builder,
        imported.network,
        build_options,
        imported.context.options.profiles,
        imported.plugins,
    )
    serialized, seconds = build_serialized(
        imported.backend,
        imported.builder,
        imported.network,
        config,
        progress=progress,
        logger=imported.logger,
    )
    return serialized, seconds, cache


def _rescue_build(
    imported: ImportedNetwork,
    err: EngineBuildError,
    requested: ImportOptions,
    build_options: BuildOptions,
) -> bool:
    """After the builder refused: rewrite the ONNX graph and import it again (onnxtools.rescue).

    False when there is no ONNX graph to rewrite, or the failure is a GPU-only flag's.
    """
    ctx = imported.context
    if ctx.onnx_path is None or build_options.refittable or build_options.strip_weights:
        return False
    from trtimport.onnxtools.passes.batch import check_batch_options
    from trtimport.onnxtools.rescue import network_input_shapes, rescue

    fixed = network_input_shapes(imported.network)
    pinned = {n: fixed[n] for n in fixed if not any(n in p for p in ctx.options.profiles)}
    getattr(imported.logger, "errors", []).clear()
    rescue(ctx, err, shapes=pinned)
    options = replace(requested, input_shapes={**requested.input_shapes, **pinned})
    complete_import(imported, options, check_batch_options(requested))
    return True


def _sidecar_rewrites(imported: ImportedNetwork) -> dict[str, Any]:
    """The sidecar's ``rewrites``: the precision records and the rescue steps, by kind."""
    rewrites: dict[str, Any] = dict(imported.context.records)
    if imported.context.rewrites:
        rewrites["rescue"] = [step.as_dict() for step in imported.context.rewrites]
    return rewrites


def _require_onnx(imported: ImportedNetwork) -> Path:
    if imported.onnx_path is None:
        raise UsageError(
            f"--save-onnx: the {imported.format} importer builds the network directly, without "
            "ONNX; use --save-network-onnx to export the network instead"
        )
    return imported.onnx_path


def _check_convert_outputs(
    entry: ImporterEntry,
    source: Path,
    options: ImportOptions,
    outputs: dict[str, Path | None],
) -> None:
    """Refuse outputs that are any file the model is read from (weights, external data …)."""
    from trtimport.core.output_files import check_outputs

    inputs = [
        source,
        options.weights,
        options.precision.calib_data,
        *entry.importer.related_files(source, options),
    ]
    check_outputs(outputs, inputs)


def convert(
    model: str | Path,
    output: str | Path | None = None,
    *,
    import_options: ImportOptions | None = None,
    build_options: BuildOptions | None = None,
    save_onnx_to: str | Path | None = None,
    save_network_onnx_to: str | Path | None = None,
    build: bool = True,
    plugins: Plugins | None = None,
    backend: Backend | str | None = None,
    verbosity: int = 0,
    progress: Progress | None = None,
) -> ConvertResult:
    """Import ``model`` and build a TensorRT engine at ``output`` (default ``./<stem>.engine``).

    ``build=False`` stops after importing (and saving the ONNX if asked). Long work reports
    to ``progress``, which may also cancel the build; ``build_options.progress=False`` reports
    nothing of the build (``progress`` may still cancel it).
    ``save_network_onnx_to`` writes the populated TensorRT network itself as ONNX
    (:func:`trtimport.export.writer.export_network_onnx`), before any build.
    """
    import_options = import_options or ImportOptions()
    build_options = build_options or BuildOptions()
    source = Path(model)
    engine = Path(output) if output is not None else default_engine_path(source)
    if import_options.precision.int8 and import_options.precision.calib_cache is None:
        from trtimport.onnxtools.passes.calibrate import default_calib_cache

        import_options = replace(
            import_options,
            precision=replace(
                import_options.precision,
                calib_cache=default_calib_cache(source, engine) if build else None,
            ),
        )
    plugins = plugins or load_plugins()
    entry = detect_format(source, plugins, import_options.format)
    _check_convert_outputs(
        entry,
        source,
        import_options,
        {
            "-o": engine if build else None,
            "the engine's sidecar": sidecar_path(engine) if build else None,
            "--save-onnx": Path(save_onnx_to) if save_onnx_to is not None else None,
            "--save-network-onnx": (
                Path(save_network_onnx_to) if save_network_onnx_to is not None else None
            ),
            "--calib-cache": import_options.precision.calib_cache,
            "--cache": build_options.cache,
        },
    )
    hashes = None
    if build:
        # Hash the source files for the sidecar while the model is parsed and built.
        hashes = BackgroundHashes(
            entry.importer.related_files(source, import_options), recorded_sources(engine)
        )
        start_dropping_cached_pages(engine)
    requested = import_options
    with import_detected(
        entry, source, import_options, plugins, backend, verbosity, progress
    ) as imported:
        import_options = imported.context.options
        be = imported.backend
        targets = resolved_targets(be, build_options)
        result = ConvertResult(
            model=source,
            format=imported.format,
            backend=be.name,
            backend_version=be.version,
            inputs=imported.inputs,
            outputs=imported.outputs,
            layers=imported.num_layers,
            targets=targets,
            notes=list(imported.notes),
        )
        written: list[Path] = []
        with contextlib.ExitStack() as stack:
            saved_onnx: list[Path] = []
            # Exited last: the outputs are renamed into place together, not cut by a signal.
            commit = stack.enter_context(SignalsHeld())
            if save_onnx_to is not None:
                from trtimport.onnxtools.standalone import standalone_onnx

                saved_onnx = stack.enter_context(
                    standalone_onnx(_require_onnx(imported), Path(save_onnx_to))
                )
            if save_network_onnx_to is not None:
                from trtimport.export.writer import export_network_onnx

                # Renamed into place only once the engine (if any) is built too.
                net_tmp = stack.enter_context(atomic_path(Path(save_network_onnx_to)))
                export_network_onnx(imported.network, net_tmp, be)
            if hashes is not None:
                shown = (
                    progress if build_options.progress or progress is None else CancelOnly(progress)
                )
                try:
                    serialized, seconds, cache = _build(imported, build_options, shown)
                except EngineBuildError as err:
                    if not _rescue_build(imported, err, requested, build_options):
                        raise
                    import_options = imported.context.options
                    result.inputs, result.outputs = imported.inputs, imported.outputs
                    result.layers = imported.num_layers
                    result.notes = list(imported.notes)
                    serialized, seconds, cache = _build(imported, build_options, shown)
                targets = _targets_built(imported, targets, result.notes)
                result.targets = targets
                sidecar = make_sidecar(
                    backend=be,
                    source=imported.source,
                    format=imported.format,
                    file_hashes=hashes.result(),
                    # The pinned --input-values stay recorded (a rewrite folded them in).
                    import_options=replace(import_options, input_values=requested.input_values),
                    build_options=build_options,
                    builder_threads=getattr(imported.builder, "max_threads", None),
                    targets=targets,
                    shape_tensor_inputs=list(shape_tensor_inputs(imported.network)),
                    inputs=imported.inputs,
                    outputs=imported.outputs,
                    layers=imported.num_layers,
                    seconds=seconds,
                    default_input_shapes=imported.context.default_shapes,
                    rewrites=_sidecar_rewrites(imported),
                )
                commit.start()
                result.engine_bytes = write_engine(engine, serialized, sidecar)
                save_timing_cache(cache, build_options.cache)
                result.engine = engine
                result.build_seconds = seconds
                written += [engine, sidecar_path(engine)]
            commit.start()
        if save_onnx_to is not None:
            result.onnx = Path(save_onnx_to)
            written += saved_onnx
        if save_network_onnx_to is not None:
            written.append(Path(save_network_onnx_to))
        result.files_written = written
    return result
