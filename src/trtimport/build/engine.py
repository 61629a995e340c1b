"""Engines on disk: written atomically, with a JSON sidecar describing how they were made.

The sidecar's schema lives here alone: :func:`make_sidecar` writes it and
:func:`import_options_of` reads back the import options an engine was built with.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trtimport.core.backend import Backend
from trtimport.core.files import FileHashes, atomic_path
from trtimport.core.importer_options import ImporterOptions
from trtimport.core.options import BuildOptions, ImportOptions, PrecisionOptions, Profile
from trtimport.errors import ModelParseError, TrtImportError

SIDECAR_SCHEMA = 1


@dataclass(frozen=True)
class TensorInfo:
    """A network input or output: name, shape (-1 for dynamic dims) and dtype."""

    name: str
    shape: tuple[int, ...]
    dtype: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


def sidecar_path(engine: Path) -> Path:
    """``model.engine`` -> ``model.engine.json``."""
    return engine.with_name(engine.name + ".json")


def write_engine(engine: Path, data: Any, sidecar: dict[str, Any]) -> int:
    """Write the engine and its sidecar atomically; returns the engine's size in bytes.

    The sidecar is renamed into place first, then the engine, so an engine file never exists
    without its description. Until then, an existing engine at ``engine`` stays as it was, and a
    failed write leaves no file behind (see :func:`~trtimport.core.files.atomic_path`).
    """
    side = sidecar_path(engine)
    with atomic_path(engine) as tmp_engine:
        with tmp_engine.open("wb") as f:
            f.write(memoryview(data))
        size = os.path.getsize(tmp_engine)
        # No hash of the engine itself: hashing costs as much as writing it (see
        # docs/performance.md); the size ties the sidecar to its engine.
        sidecar = {**sidecar, "engine": {"file": engine.name, "bytes": size}}
        with atomic_path(side) as tmp_side:
            tmp_side.write_text(json.dumps(sidecar, indent=2, default=str) + "\n")
    return size


def recorded_sources(engine: Path) -> dict[str, dict[str, Any]]:
    """Source-file entries (by path) of the sidecar an earlier build left for ``engine``.

    Empty when there is none or it cannot be read (a broken sidecar is as good as none: the
    rebuild replaces it): the entries only spare re-hashing files that have not changed
    (:func:`~trtimport.core.files.reusable_digest`).
    """
    try:
        files = (read_sidecar(engine).get("source") or {}).get("files") or []
    except TrtImportError:
        return {}
    return {e["path"]: e for e in files if isinstance(e, dict) and isinstance(e.get("path"), str)}


#: Larger than any sidecar trtimport writes (a few KiB, a few hundred source files at most).
SIDECAR_LIMIT = 16 << 20

#: What ``run``, ``bench`` and ``refit`` rely on in a sidecar: dotted key -> its value's type
#: (a key may be absent or null).
_SIDECAR_TYPES: dict[str, type | tuple[type, ...]] = {
    "inputs": list,
    "outputs": list,
    "source": dict,
    "source.model": str,
    "source.format": str,
    "source.files": list,
    "backend": dict,
    "backend.name": str,
    "backend.version": str,
    "build_options": dict,
    "build_options.refittable": bool,
    "import_options": dict,
    "import_options.input_shapes": dict,
    "import_options.outputs": list,
    "import_options.opset": int,
    "import_options.batch": list,
    "import_options.importer_options": dict,
    "import_options.precision": dict,
    "engine": dict,
    "engine.bytes": int,
    "engine.sha256": str,
}


def _sidecar_type_problems(data: dict[str, Any]) -> list[str]:
    """``'KEY' is TYPE`` for each key of :data:`_SIDECAR_TYPES` whose value has another type."""
    wrong = []
    for key, kind in _SIDECAR_TYPES.items():
        parent, _, name = key.rpartition(".")
        holder = data.get(parent) if parent else data
        value = holder.get(name) if isinstance(holder, dict) else None
        if value is not None and not isinstance(value, kind):
            wrong.append(f"'{key}' is {type(value).__name__}")
    return wrong


def read_sidecar(engine: Path) -> dict[str, Any]:
    """The sidecar of an engine written by trtimport, checked to be one.

    Anything else (missing, not UTF-8, not JSON, nested too deep, a FIFO, a wrong type where
    trtimport expects a list or an object) is one ModelParseError that says to rebuild.
    """
    from trtimport.core.input_files import read_bounded

    side = sidecar_path(engine)
    if not os.path.lexists(side):
        raise ModelParseError(
            f"{engine}: no sidecar {side.name} beside the engine; engines built by trtimport "
            "have one. Rebuild the engine with trtimport."
        )
    try:
        data = json.loads(read_bounded(side, SIDECAR_LIMIT, "engine sidecar").decode("utf-8"))
    except TrtImportError as err:
        raise ModelParseError(f"{err}; rebuild the engine with trtimport") from err
    except (ValueError, RecursionError) as err:  # JSON and UTF-8 errors are ValueErrors
        raise ModelParseError(
            f"{side}: not a valid sidecar ({type(err).__name__}: {err}); rebuild the engine "
            "with trtimport"
        ) from err
    if not isinstance(data, dict):
        raise ModelParseError(f"{side}: not a trtimport sidecar; rebuild the engine")
    wrong = _sidecar_type_problems(data)
    if wrong:
        raise ModelParseError(
            f"{side}: not a trtimport sidecar ({', '.join(wrong)}); rebuild the engine "
            "with trtimport"
        )
    return data


def make_sidecar(
    *,
    backend: Backend,
    source: Path,
    format: str,
    file_hashes: FileHashes,
    import_options: ImportOptions,
    build_options: BuildOptions,
    builder_threads: int | None,
    targets: list[str],
    shape_tensor_inputs: list[str],
    inputs: list[TensorInfo],
    outputs: list[TensorInfo],
    layers: int,
    seconds: float,
    default_input_shapes: dict[str, tuple[int, ...]] | None = None,
    rewrites: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The sidecar of an engine just built (:func:`write_engine` adds the engine's size).

    ``rewrites``: what the ONNX rewrites did, by kind: ``precision`` (what ``--keep-fp32`` and
    ``--max-error`` kept, ``ImportContext.records``) and ``rescue`` (the steps that made a graph
    TensorRT refused buildable, ``ImportContext.rewrites``)."""
    from trtimport import __version__

    return {
        "schema": SIDECAR_SCHEMA,
        "trtimport": __version__,
        "backend": {
            "name": backend.name,
            "version": backend.version,
            "onnx_parser": backend.onnx_parser_version,
        },
        "python": ".".join(map(str, sys.version_info[:3])),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "source": {
            "model": str(source),
            "format": format,
            "files": [
                {"path": str(p), "sha256": digest, **stamp} for p, digest, stamp in file_hashes
            ],
        },
        "import_options": {
            "input_shapes": {k: list(v) for k, v in import_options.input_shapes.items()},
            "input_values": {k: list(v) for k, v in import_options.input_values.items()},
            "outputs": list(import_options.outputs),
            "opset": import_options.opset,
            "batch": list(import_options.batch) if import_options.batch else None,
            "more_batches": [list(b) for b in import_options.more_batches],
            "precision": import_options.precision.as_dict(),
            # Each importer's own options (ImporterOptions.as_dict), keyed like ImportOptions'.
            "importer_options": {
                key: value.as_dict() if isinstance(value, ImporterOptions) else dict(value)
                for key, value in import_options.importer_options.items()
            },
            "rewrite": import_options.rewrite,
        },
        # What the ONNX rewrites did: "precision" (kept layers) and "rescue" (how a graph TensorRT
        # refused was rewritten before it was built, onnxtools.rescue).
        "rewrites": rewrites or {},
        "build_options": {
            "workspace": build_options.workspace,
            "optimization_level": build_options.optimization_level,
            "refittable": build_options.refittable,
            "strip_weights": build_options.strip_weights,
            "profiling_verbosity": build_options.profiling_verbosity,
            # How many threads the builder could use (the engine does not depend on it).
            "builder_threads": builder_threads,
            # TensorRT-RTX's runtime cache is filled when the engine runs; runners read the path
            # from here. Full TensorRT's timing cache was used (and updated) by this build.
            "cache": {
                "kind": backend.cache_kind,
                "path": str(build_options.cache.absolute()) if build_options.cache else None,
            },
        },
        "targets": targets,
        "profiles": [_profile_dict(profile) for profile in import_options.profiles],
        # Their ranges in "profiles" are values, not shapes.
        "shape_tensor_inputs": sorted(shape_tensor_inputs),
        # Dynamic batch dimensions set to 1 because no flag gave them (input name -> shape).
        "default_input_shapes": {k: list(v) for k, v in (default_input_shapes or {}).items()},
        "inputs": [t.as_dict() for t in inputs],
        "outputs": [t.as_dict() for t in outputs],
        "layers": layers,
        "build_seconds": round(seconds, 3),
    }


def _profile_dict(profile: Profile) -> dict[str, dict[str, list[int]]]:
    return {name: rng.as_dict() for name, rng in profile.items()}


def _path(value: Any) -> Path | None:
    return Path(value) if value else None


def _precision_of(recorded: dict[str, Any], guard: dict[str, Any]) -> PrecisionOptions:
    """The recorded precision; the nodes ``--keep-fp32``/``--max-error`` kept (``guard``, the
    sidecar's ``rewrites.precision``) are kept again by name, without a new search, so a
    re-import (refit) gives the same graph."""
    defaults = PrecisionOptions()
    kept = [*(guard.get("keep_fp32") or recorded.get("keep_fp32") or [])]
    kept += [n for n in guard.get("kept_for_error") or [] if n not in kept]
    return PrecisionOptions(
        precision=recorded.get("precision") or defaults.precision,
        int8=bool(recorded.get("int8")),
        calib_data=_path(recorded.get("calib_data")),
        calib_batches=recorded.get("calib_batches"),
        calib_method=recorded.get("calib_method") or defaults.calib_method,
        calib_percentile=recorded.get("calib_percentile") or defaults.calib_percentile,
        calib_cache=_path(recorded.get("calib_cache")),
        calib_clip_inputs=bool(recorded.get("calib_clip_inputs")),
        keep_fp32=tuple(kept),
    )


def _recorded_importer_options(recorded: dict[str, Any]) -> dict[str, Any]:
    """The importers' own options; sidecars written before they were typed kept TensorFlow's
    ``inputs_as_nchw`` in an untyped ``extra`` (read for one release so such engines refit)."""
    if "importer_options" in recorded:
        return dict(recorded["importer_options"] or {})
    legacy = (recorded.get("extra") or {}).get("inputs_as_nchw")
    names = [legacy] if isinstance(legacy, str) else list(legacy or [])
    return {"tensorflow": {"inputs_as_nchw": names}} if names else {}


def import_options_of(sidecar: dict[str, Any], weights: Path | None = None) -> ImportOptions:
    """The import options recorded in ``sidecar`` (``weights`` replaces the recorded ones).

    Everything :func:`make_sidecar` records comes back: shapes, shape-tensor values, outputs,
    opset, every batch range and the precision (the calibration's image options are not
    recorded; with a calibration cache they are not needed).
    """
    try:
        return _recorded_import_options(sidecar, weights)
    except (AttributeError, TypeError, ValueError) as err:
        raise ModelParseError(
            f"the engine's sidecar records import options trtimport cannot read ({err}); "
            "rebuild the engine with trtimport"
        ) from err


def _recorded_import_options(sidecar: dict[str, Any], weights: Path | None) -> ImportOptions:
    recorded = sidecar.get("import_options") or {}
    batch = recorded.get("batch")
    return ImportOptions(
        weights=weights,
        format=(sidecar.get("source") or {}).get("format"),
        input_shapes={k: tuple(v) for k, v in (recorded.get("input_shapes") or {}).items()},
        input_values={k: tuple(v) for k, v in (recorded.get("input_values") or {}).items()},
        outputs=list(recorded.get("outputs") or []),
        opset=recorded.get("opset"),
        batch=tuple(batch) if batch else None,  # type: ignore[arg-type]
        more_batches=[tuple(b) for b in recorded.get("more_batches") or []],  # type: ignore[misc]
        precision=_precision_of(
            recorded.get("precision") or {},
            (sidecar.get("rewrites") or {}).get("precision") or {},
        ),
        importer_options={
            str(key): dict(value) for key, value in _recorded_importer_options(recorded).items()
        },
        rewrite=bool(recorded.get("rewrite", True)),
    )
