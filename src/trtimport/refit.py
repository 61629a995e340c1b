"""Refit a refittable engine with new weights, by weight name.

The mapping from new weights to the engine's weights is computed and checked on the CPU first:
the engine's source model (named in its sidecar) is imported again, and the initializers of the
ONNX it goes through are the engine's weights (TensorRT's ONNX parser names refittable weights
after ONNX initializers). New weights come from an ONNX file (its initializers), an ``.npz``
(arrays by initializer name, a subset is fine), or any weights file the source format takes
(e.g. a ``.caffemodel``: the source is imported again with it). Every missing, unknown or
mismatched weight is reported in one error before the engine is touched. Only then is a GPU
needed: ``trt.Refitter`` deserializes the engine, ``trt.OnnxParserRefitter`` (or
``set_named_weights`` for ``.npz``) sets the weights, and the refitted engine is written
atomically with an updated sidecar.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trtimport.build.engine import import_options_of, read_sidecar, write_engine
from trtimport.core.backend import Backend
from trtimport.core.files import private_folder
from trtimport.core.input_files import check_input
from trtimport.core.options import ImportOptions
from trtimport.errors import EngineBuildError, ShapeError, UsageError
from trtimport.onnxtools.external_data import load_initializers
from trtimport.plugins.manager import Plugins, load_plugins


@dataclass(frozen=True)
class WeightInfo:
    """One named weight: shape and numpy dtype name."""

    name: str
    shape: tuple[int, ...]
    dtype: str


@dataclass
class RefitPlan:
    """What will be refitted, checked on the CPU."""

    engine: Path
    source: Path
    weights_file: Path
    #: ``onnx`` (refit from an ONNX file) or ``npz`` (refit array by array).
    mode: str
    #: The engine's weights (float initializers of the source's ONNX).
    expected: dict[str, WeightInfo]
    #: The weights that will be set.
    provided: dict[str, WeightInfo]
    #: The ONNX file handed to OnnxParserRefitter (mode ``onnx``).
    onnx_file: Path | None = None
    #: Arrays by name (mode ``npz``).
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    sidecar: dict[str, Any] = field(default_factory=dict)
    _owned: Path | None = None

    def close(self) -> None:
        """Remove the temporary files the plan owns."""
        if self._owned is not None:
            shutil.rmtree(self._owned, ignore_errors=True)
            self._owned = None

    def __enter__(self) -> RefitPlan:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly summary."""
        return {
            "engine": str(self.engine),
            "source": str(self.source),
            "weights_file": str(self.weights_file),
            "mode": self.mode,
            "engine_weights": len(self.expected),
            "weights_set": sorted(self.provided),
        }


def _float(dtype: np.dtype) -> bool:
    return bool(np.issubdtype(dtype, np.floating))


def _info(name: str, array: np.ndarray) -> WeightInfo:
    return WeightInfo(name, tuple(int(d) for d in array.shape), str(array.dtype))


def _source_of(engine: Path, sidecar: dict[str, Any], model: Path | None) -> Path:
    if model is not None:
        if not model.exists():
            raise UsageError(f"{model}: no such model (--model)")
        return model
    recorded = (sidecar.get("source") or {}).get("model")
    if not recorded:
        raise UsageError(f"{engine}: the sidecar names no source model; give it with --model")
    for candidate in (Path(recorded), engine.parent / recorded):
        if candidate.exists():
            return candidate
    raise UsageError(
        f"{engine}: its source model {recorded} (from the sidecar) is not there; the weight "
        "mapping needs it: give its new location with --model"
    )


def _imported_initializers(
    source: Path, options: ImportOptions, plugins: Plugins, keep_in: Path | None = None
) -> tuple[dict[str, np.ndarray], Path | None]:
    """Initializers of the ONNX the source is imported through (optionally keeping a copy)."""
    from trtimport.populate import import_model

    with import_model(source, options=options, plugins=plugins) as imported:
        if imported.onnx_path is None:
            raise UsageError(
                f"{source}: the {imported.format} importer fills the network without ONNX; "
                "refit by name needs an ONNX-based model"
            )
        work = imported.context.work
        # trtimport's own intermediate file (linking a caffemodel, say) was never the user's.
        own = work.relative(imported.onnx_path) is not None
        arrays = load_initializers(imported.onnx_path, checked=own)
        kept = None
        if keep_in is not None:
            if work.made:
                shutil.copytree(work.path, keep_in, dirs_exist_ok=True)
            inside = work.relative(imported.onnx_path)
            kept = imported.onnx_path.resolve() if inside is None else keep_in / inside
        return arrays, kept


def plan_refit(
    engine: str | Path,
    weights: str | Path,
    *,
    model: Path | None = None,
    plugins: Plugins | None = None,
) -> RefitPlan:
    """Compute and check the weight mapping (CPU only); one error lists every problem."""
    engine, weights = Path(engine), Path(weights)
    sidecar = read_sidecar(engine)
    if not (sidecar.get("build_options") or {}).get("refittable"):
        raise UsageError(
            f"{engine}: the engine was not built refittable; rebuild it with --refittable"
        )
    check_input(weights, "weights (--weights)", folder_ok=True)
    plugins = plugins or load_plugins()
    source = _source_of(engine, sidecar, model)
    current, _ = _imported_initializers(source, import_options_of(sidecar), plugins)
    expected = {n: _info(n, a) for n, a in current.items() if _float(a.dtype)}
    constants = {n: a for n, a in current.items() if not _float(a.dtype)}
    suffix = weights.suffix.lower()
    plan = RefitPlan(engine, source, weights, "onnx", expected, {}, sidecar=sidecar)
    try:
        if suffix == ".npz":
            from trtimport.core.input_files import load_npz

            plan.mode = "npz"
            plan.arrays = load_npz(weights, what="weights (--weights)")
            new = plan.arrays
        elif suffix == ".onnx":
            new = load_initializers(weights)
            plan.onnx_file = weights
        else:
            plan._owned = private_folder(Path(tempfile.gettempdir()), "trtimport-refit-")
            new, plan.onnx_file = _imported_initializers(
                source, import_options_of(sidecar, weights), plugins, keep_in=plan._owned
            )
        plan.provided = {n: _info(n, a) for n, a in new.items() if _float(a.dtype)}
        problems = _mapping_problems(plan, new, constants)
        if problems:
            raise ShapeError(
                f"{weights}: does not fit the engine {engine} ({len(problems)} problem(s)); "
                "nothing was changed:\n" + "\n".join(f"  - {p}" for p in problems)
            )
    except BaseException:
        plan.close()
        raise
    return plan


def _mapping_problems(
    plan: RefitPlan, new: dict[str, np.ndarray], constants: dict[str, np.ndarray]
) -> list[str]:
    problems = []
    for name, want in plan.expected.items():
        got = plan.provided.get(name)
        if got is None:
            if plan.mode != "npz":
                problems.append(f"missing weight '{name}' {list(want.shape)} {want.dtype}")
        elif got.shape != want.shape:
            problems.append(
                f"weight '{name}': shape {list(got.shape)}, the engine has {list(want.shape)}"
            )
        elif got.dtype != want.dtype:
            problems.append(f"weight '{name}': dtype {got.dtype}, the engine has {want.dtype}")
    for name, array in new.items():
        if name in plan.expected:
            continue
        if name in constants:
            if not np.array_equal(constants[name], array):
                problems.append(
                    f"constant '{name}' differs; it is not a refittable weight (the graph changed)"
                )
        else:
            problems.append(f"'{name}' {list(array.shape)} is not a weight of the engine")
    return problems


def refit_engine(plan: RefitPlan, output: Path | None = None, *, verbosity: int = 0) -> Path:
    """Refit the planned engine on the GPU and write it atomically (in place by default)."""
    from trtimport.build.trtlog import make_logger
    from trtimport.runtime.tensorrt import check_engine_file, engine_backend

    backend = engine_backend(plan.engine, plan.sidecar)
    backend.require_gpu(f"Refitting {plan.engine}")
    check_engine_file(plan.engine, plan.sidecar)
    trt = backend.trt
    logger = make_logger(backend, verbosity)
    runtime = trt.Runtime(logger)
    engine = runtime.deserialize_cuda_engine(plan.engine.read_bytes())
    if engine is None:
        raise EngineBuildError(f"{plan.engine}: {backend.name} could not deserialize the engine")
    if not engine.refittable:
        raise UsageError(f"{plan.engine}: the engine is not refittable; rebuild with --refittable")
    refitter = trt.Refitter(engine, logger)
    engine_names = set(refitter.get_all_weights())
    unknown = sorted(n for n in plan.provided if n not in engine_names)
    if plan.mode == "npz" and unknown:
        raise ShapeError(
            f"{plan.weights_file}: not refittable weights of the engine: {', '.join(unknown)}"
        )
    keep: list[Any] = []
    if plan.mode == "npz":
        for name, array in plan.arrays.items():
            contiguous = np.ascontiguousarray(array)
            keep.append(contiguous)
            if not refitter.set_named_weights(name, trt.Weights(contiguous)):
                raise ShapeError(f"{plan.weights_file}: TensorRT rejected weight '{name}'")
    else:
        parser_refitter = trt.OnnxParserRefitter(refitter, logger)
        if not parser_refitter.refit_from_file(str(plan.onnx_file)):
            from trtimport.onnxtools.parse import parser_errors

            errors = parser_errors(parser_refitter)
            raise ShapeError(
                f"{plan.weights_file}: TensorRT's ONNX refitter failed:\n"
                + "\n".join(f"  - {e}" for e in errors)
            )
    missing = list(refitter.get_missing_weights())
    if missing:
        raise ShapeError(
            f"{plan.weights_file}: the engine also needs these weights: {', '.join(missing)}"
        )
    if not refitter.refit_cuda_engine():
        raise EngineBuildError(
            f"{plan.engine}: refitting failed: {'; '.join(getattr(logger, 'errors', []))}"
        )
    dest = output or plan.engine
    sidecar = dict(plan.sidecar)
    sidecar["refit"] = {"weights": str(plan.weights_file), "weights_set": len(plan.provided)}
    write_engine(dest, serialize_refitted(backend, engine, plan.sidecar), sidecar)
    return dest


def serialize_refitted(backend: Backend, engine: Any, sidecar: dict[str, Any]) -> Any:
    """The refitted engine's bytes; a ``--strip-weights`` engine keeps its refit information.

    ``serialize()`` of an engine built with STRIP_PLAN leaves out what refitting needs, so the
    result would no longer be refittable while its sidecar says it is; serializing with
    ``SerializationFlag.INCLUDE_REFIT`` keeps it.
    """
    if not (sidecar.get("build_options") or {}).get("strip_weights"):
        return engine.serialize()
    if not backend.has("serialize_include_refit"):
        raise UsageError(
            f"{backend.name} {backend.version} cannot serialize a refitted --strip-weights "
            "engine with its refit information (no SerializationFlag.INCLUDE_REFIT); rebuild "
            "the engine without --strip-weights"
        )
    config = engine.create_serialization_config()
    config.set_flag(backend.trt.SerializationFlag.INCLUDE_REFIT)
    return engine.serialize_with_config(config)
