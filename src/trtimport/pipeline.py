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
from trtimport.core.progress import Progress
from trtimport.detect import detect_format
from trtimport.errors import UsageError
from trtimport.plugins.manager import ImporterEntry, Plugins, load_plugins
from trtimport.populate import ImportedNetwork, import_detected


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
    nothing of the build.
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
            # Exited last: the outputs are renamed into place together, not cut by a signal.
            commit = stack.enter_context(SignalsHeld())
            onnx_tmp: Path | None = None
            if save_onnx_to is not None:
                src = _require_onnx(imported)
                import shutil

                onnx_tmp = stack.enter_context(atomic_path(Path(save_onnx_to)))
                shutil.copyfile(src, onnx_tmp)
            if save_network_onnx_to is not None:
                from trtimport.export.writer import export_network_onnx

                # Renamed into place only once the engine (if any) is built too.
                net_tmp = stack.enter_context(atomic_path(Path(save_network_onnx_to)))
                export_network_onnx(imported.network, net_tmp, be)
            if hashes is not None:
                config, cache = make_config(
                    be,
                    imported.builder,
                    imported.network,
                    build_options,
                    import_options.profiles,
                    imported.plugins,
                )
                serialized, seconds = build_serialized(
                    be,
                    imported.builder,
                    imported.network,
                    config,
                    progress=progress if build_options.progress else None,
                    logger=imported.logger,
                )
                targets = _targets_built(imported, targets, result.notes)
                result.targets = targets
                sidecar = make_sidecar(
                    backend=be,
                    source=imported.source,
                    format=imported.format,
                    file_hashes=hashes.result(),
                    import_options=import_options,
                    build_options=build_options,
                    builder_threads=getattr(imported.builder, "max_threads", None),
                    targets=targets,
                    shape_tensor_inputs=list(shape_tensor_inputs(imported.network)),
                    inputs=imported.inputs,
                    outputs=imported.outputs,
                    layers=imported.num_layers,
                    seconds=seconds,
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
            written.append(result.onnx)
        if save_network_onnx_to is not None:
            written.append(Path(save_network_onnx_to))
        result.files_written = written
    return result
