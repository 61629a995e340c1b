"""Pick and open the runner for a model or an engine.

An engine file runs on TensorRT (GPU). A model is imported; then ``auto`` builds an engine in
memory and runs it on TensorRT when a usable GPU exists, and otherwise runs the model's ONNX on
ONNX Runtime: the intermediate ONNX the importer produced, or (for importers that fill the
network directly) the TensorRT network exported to ONNX.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from pathlib import Path

from trtimport.build.engine import sidecar_path
from trtimport.core.files import private_folder
from trtimport.core.options import BuildOptions, ImportOptions
from trtimport.core.runner import Runner, TensorSpec
from trtimport.errors import UsageError
from trtimport.plugins.manager import Plugins
from trtimport.populate import ImportedNetwork, import_model
from trtimport.runtime import RUNTIMES
from trtimport.runtime.onnxruntime import OnnxRuntimeRunner
from trtimport.runtime.tensorrt import ENGINE_SUFFIXES, TensorRTRunner, io_dtype


def is_engine_file(path: Path) -> bool:
    """True for serialized engines (by suffix, or a trtimport sidecar beside the file)."""
    return path.suffix.lower() in ENGINE_SUFFIXES or sidecar_path(path).is_file()


def _specs(imported: ImportedNetwork) -> tuple[list[TensorSpec], list[TensorSpec]]:
    def spec(info: object) -> TensorSpec:
        """TensorInfo (-1 for dynamic dims) -> TensorSpec (None for dynamic dims)."""
        shape = tuple(None if d < 0 else d for d in info.shape)  # type: ignore[attr-defined]
        name, dtype = info.name, info.dtype  # type: ignore[attr-defined]
        return TensorSpec(name, shape, io_dtype(name, dtype, str(imported.source)))

    return [spec(t) for t in imported.inputs], [spec(t) for t in imported.outputs]


def engine_runner_for(
    imported: ImportedNetwork,
    *,
    streams: int = 1,
    cuda_graph: bool = False,
    shared_scratch: bool = False,
    memory_pool: bool = False,
    verbosity: int = 0,
) -> TensorRTRunner:
    """Build an engine for the imported network in memory and open it (needs a GPU)."""
    from trtimport.build.builder import build_serialized, make_config

    be = imported.backend
    be.require_gpu(f"Running {imported.source} on TensorRT")
    config, _ = make_config(
        be,
        imported.builder,
        imported.network,
        BuildOptions(progress=False),
        imported.context.options.profiles,
        imported.plugins,
    )
    if cuda_graph and be.has("require_user_allocation"):
        # TensorRT-RTX: stream capture needs engines that take application memory.
        config.set_flag(be.trt.BuilderFlag.REQUIRE_USER_ALLOCATION)
    serialized, _ = build_serialized(
        be, imported.builder, imported.network, config, logger=imported.logger
    )
    inputs, outputs = _specs(imported)
    return TensorRTRunner(
        memoryview(serialized),
        be,
        inputs,
        outputs,
        label=f"{imported.source.name} ({be.name} {be.version}, engine built in memory)",
        streams=streams,
        cuda_graph=cuda_graph,
        shared_scratch=shared_scratch,
        memory_pool=memory_pool,
        verbosity=verbosity,
    )


def intermediate_onnx_runner(imported: ImportedNetwork) -> OnnxRuntimeRunner:
    """ONNX Runtime on the ONNX the importer parsed (a private copy if it was a temp file)."""
    onnx_path = imported.onnx_path
    if onnx_path is None:
        return exported_onnx_runner(imported)
    work = imported.context.work
    inside = work.relative(onnx_path)
    if inside is None:
        return OnnxRuntimeRunner(onnx_path)
    label = f"the intermediate ONNX of {imported.source.name} on onnxruntime"
    # The importer's folder goes away with the ImportedNetwork; keep a copy we own.
    owned = private_folder(Path(tempfile.gettempdir()), "trtimport-run-")
    try:
        shutil.copytree(work.path, owned, dirs_exist_ok=True)
        copy = owned / inside
        return OnnxRuntimeRunner(copy, label=label, owned_dir=owned)
    except BaseException:
        shutil.rmtree(owned, ignore_errors=True)
        raise


def exported_onnx_runner(imported: ImportedNetwork) -> OnnxRuntimeRunner:
    """ONNX Runtime on the TensorRT network exported to ONNX (needs the network exporter)."""
    try:
        from trtimport.export.writer import export_network_onnx  # type: ignore[import-not-found]
    except ImportError as err:
        raise UsageError(
            f"{imported.source}: the {imported.format} importer fills the TensorRT network "
            "directly, so there is no ONNX to run on ONNX Runtime, and this installation has "
            "no network exporter (trtimport.export.writer). Run it on a GPU with "
            "--runtime tensorrt."
        ) from err
    owned = private_folder(Path(tempfile.gettempdir()), "trtimport-export-")
    try:
        dest = owned / f"{imported.source.stem or 'network'}.onnx"
        export_network_onnx(imported.network, dest, imported.backend)
        return OnnxRuntimeRunner(
            dest,
            label=f"{imported.source.name}: TensorRT network exported to ONNX, on onnxruntime",
            owned_dir=owned,
        )
    except BaseException:
        shutil.rmtree(owned, ignore_errors=True)
        raise


def choose_runtime(requested: str, imported: ImportedNetwork) -> str:
    """``tensorrt`` or ``onnxruntime`` for ``--runtime auto|tensorrt|onnxruntime``."""
    if requested not in RUNTIMES:
        raise UsageError(f"unknown --runtime '{requested}': use {', '.join(RUNTIMES)}")
    if requested != "auto":
        return requested
    return "tensorrt" if imported.backend.gpu_support_problem() is None else "onnxruntime"


def runtime_argument(runtime: str, backend: str | None) -> str:
    """``runtime``, or the value of the old keyword ``backend`` with a DeprecationWarning."""
    if backend is None:
        return runtime
    warnings.warn(
        "the 'backend' keyword of make_runner and verify_model is now 'runtime' ('backend' "
        "names the TensorRT flavour elsewhere); it will be removed in a later release",
        DeprecationWarning,
        stacklevel=3,
    )
    return backend


def make_runner(
    model: str | Path,
    runtime: str = "auto",
    *,
    import_options: ImportOptions | None = None,
    plugins: Plugins | None = None,
    streams: int = 1,
    cuda_graph: bool = False,
    shared_scratch: bool = False,
    memory_pool: bool = False,
    verbosity: int = 0,
    backend: str | None = None,
) -> Runner:
    """Open a runner for a model or an engine file; close it when done.

    ``runtime``: ``auto`` (TensorRT if a usable GPU exists, else ONNX Runtime, with a note
    saying why), ``tensorrt`` or ``onnxruntime``. Engines always run on TensorRT. ``backend``
    is the deprecated old name of ``runtime``. ``shared_scratch`` and ``memory_pool``: see
    :class:`TensorRTRunner`.
    """
    runtime = runtime_argument(runtime, backend)
    gpu_options = {"shared_scratch": shared_scratch, "memory_pool": memory_pool}
    path = Path(model)
    if runtime not in RUNTIMES:
        raise UsageError(f"unknown --runtime '{runtime}': use {', '.join(RUNTIMES)}")
    if is_engine_file(path):
        if runtime == "onnxruntime":
            raise UsageError(
                f"{path}: an engine runs only on TensorRT; to use ONNX Runtime give the model "
                "the engine was built from (its sidecar names it under source.model)"
            )
        return TensorRTRunner.from_file(
            path, streams=streams, cuda_graph=cuda_graph, verbosity=verbosity, **gpu_options
        )
    with import_model(
        path, options=import_options, plugins=plugins, verbosity=verbosity
    ) as imported:
        runner: Runner
        if choose_runtime(runtime, imported) == "tensorrt":
            runner = engine_runner_for(
                imported,
                streams=streams,
                cuda_graph=cuda_graph,
                verbosity=verbosity,
                **gpu_options,
            )
        else:
            if streams > 1 or cuda_graph:
                raise UsageError(
                    "--streams and --cuda-graph apply to TensorRT engines; ONNX Runtime runs "
                    "one query at a time on the CPU"
                )
            runner = intermediate_onnx_runner(imported)
            problem = imported.backend.gpu_support_problem()
            if runtime == "auto" and problem:
                runner.add_note(f"ran on ONNX Runtime: engines cannot run here ({problem})")
            if imported.context.options.outputs:
                runner.select_outputs(imported.context.options.outputs)
        for note in imported.notes:
            runner.add_note(note)
        return runner
