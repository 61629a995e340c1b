"""Run a serialized TensorRT engine on the GPU through cuda-python.

One execution context per stream ("slot"): each slot has its own CUDA stream, timing events,
device buffers sized from the engine's I/O for the shapes of the current call, and pinned host
buffers. Dynamic input shapes are set per call (``set_input_shape``), tensors are bound with
``set_tensor_address`` and work is enqueued with ``execute_async_v3``. Several slots run
queries concurrently for throughput; each slot may capture its enqueue in a CUDA graph. With
TensorRT-RTX, the runtime cache (JIT-compiled kernels) is loaded from and saved beside the engine.

This module holds what is TensorRT's: deserializing, contexts, profiles, scratch sizes, the RTX
runtime config. The streams, buffers, graphs and the benchmark loop are in
:mod:`trtimport.runtime.gpu`, which the GPU tests run on a real GPU with a stand-in
context. Nothing here touches CUDA before :meth:`Backend.require_gpu` has confirmed a usable GPU;
without one, :class:`NoGpuError` says what is missing and which backend runs instead. No
TensorRT engine has run on this project's machines yet (docs/performance.md).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from trtimport.build.engine import read_sidecar
from trtimport.core.backend import Backend, get_backend
from trtimport.core.runner import Launcher, Runner, TensorSpec
from trtimport.errors import (
    InferenceError,
    MissingDependencyError,
    ModelParseError,
    NoGpuError,
    OutputMarkingError,
    UsageError,
)
from trtimport.runtime.cuda_api import Cuda, StreamOrderedPool
from trtimport.runtime.gpu import (
    EngineSession,
    GpuLauncher,
    IoTensor,
    ProfileRanges,
    ScratchPlan,
)

#: Suffixes treated as serialized engines.
ENGINE_SUFFIXES = (".engine", ".plan", ".trt")


def runtime_cache_path(engine: Path, sidecar: dict[str, Any] | None = None) -> Path:
    """Where the TensorRT-RTX runtime cache of ``engine`` lives.

    The runtime cache file given at build time (``--cache``, recorded in the sidecar) if any,
    else ``model.engine.rtcache`` beside the engine.
    """
    cache = (sidecar or {}).get("cache") or {}
    if cache.get("kind") == "runtime" and cache.get("path"):
        return Path(cache["path"])
    return engine.with_name(engine.name + ".rtcache")


#: TensorRT I/O types numpy has no dtype for (names as the sidecar records them).
NON_NUMPY_TYPES = ("bfloat16", "float8", "int4", "float4", "e8m0")


def io_dtype(name: str, dtype: str, where: str) -> np.dtype:
    """The numpy dtype of an I/O tensor, or a clear error for types numpy cannot hold."""
    if dtype.lower() in NON_NUMPY_TYPES:
        raise InferenceError(
            f"{where}: I/O tensor '{name}' has type {dtype}, which numpy cannot hold, so the "
            "runner cannot feed or read it; build the engine with float32/float16 inputs and "
            "outputs (cast at the network's edges)"
        )
    return np.dtype(dtype)


def _spec(entry: dict[str, Any], engine: Path) -> TensorSpec:
    try:
        shape = tuple(None if int(d) < 0 else int(d) for d in entry["shape"])
        name = str(entry["name"])
        return TensorSpec(name, shape, io_dtype(name, str(entry["dtype"]), str(engine)))
    except (KeyError, TypeError, ValueError) as err:
        raise ModelParseError(
            f"{engine}: the sidecar's tensor entry {entry!r} is malformed ({err}); rebuild the "
            "engine with trtimport"
        ) from err


def engine_io(engine: Path, sidecar: dict[str, Any]) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """The engine's inputs and outputs as its sidecar records them (no GPU needed)."""
    for key in ("inputs", "outputs"):
        if not isinstance(sidecar.get(key), list):
            raise ModelParseError(f"{engine}: the sidecar has no '{key}' list; rebuild the engine")
    return (
        [_spec(e, engine) for e in sidecar["inputs"]],
        [_spec(e, engine) for e in sidecar["outputs"]],
    )


def engine_backend(engine: Path, sidecar: dict[str, Any]) -> Backend:
    """The installed backend the engine was built with (engines only load in their own)."""
    built = sidecar.get("backend", {}) or {}
    name = built.get("name")
    try:
        backend = get_backend(name) if name else get_backend()
    except MissingDependencyError as err:
        raise MissingDependencyError(
            f"Running {engine.name} (built with {name} {built.get('version', '')})",
            "rtx" if name == "tensorrt_rtx" else "tensorrt",
            module=name,
        ) from err
    if built.get("version") and built["version"] != backend.version:
        # Engines are tied to the exact TensorRT version that built them.
        raise UsageError(
            f"{engine}: built with {name} {built['version']}, but {backend.name} "
            f"{backend.version} is installed; rebuild the engine with this version"
        )
    return backend


def check_engine_file(engine: Path, sidecar: dict[str, Any]) -> None:
    """Refuse an engine whose size (or SHA-256, if recorded) differs from its sidecar's."""
    if not engine.is_file():
        raise UsageError(f"{engine}: no such engine file")
    recorded = sidecar.get("engine") or {}
    size, digest = recorded.get("bytes"), recorded.get("sha256")
    changed = None
    if size is not None and engine.stat().st_size != size:
        changed = "its size differs"
    elif digest and hashlib.sha256(engine.read_bytes()).hexdigest() != digest:
        changed = "its SHA-256 differs"
    if changed:
        raise ModelParseError(
            f"{engine}: the file changed after its sidecar was written ({changed}); rebuild "
            "the engine with trtimport"
        )


class TensorRTRunner(Runner):
    """A serialized engine on the GPU. Build with :meth:`from_file` or :meth:`from_bytes`."""

    name = "tensorrt"

    def __init__(
        self,
        data: bytes | memoryview,
        backend: Backend,
        inputs: list[TensorSpec],
        outputs: list[TensorSpec],
        *,
        label: str,
        streams: int = 1,
        cuda_graph: bool = False,
        shared_scratch: bool = False,
        memory_pool: bool = False,
        runtime_cache: Path | None = None,
        verbosity: int = 0,
    ) -> None:
        """Deserialize ``data`` and set up ``streams`` execution contexts (needs a GPU).

        ``shared_scratch``: one scratch buffer for every context (they then never run at once);
        otherwise one each. ``memory_pool``: TensorRT's own device allocations come from a
        stream-ordered pool (:mod:`trtimport.runtime.allocator`).
        """
        if streams < 1:
            raise UsageError("--streams must be at least 1")
        self.label = label
        self.backend = backend
        self._inputs = inputs
        self._outputs = outputs
        self._session: EngineSession | None = None
        self._cache: Any = None
        self._config: Any = None
        self._engine: Any = None
        self._runtime: Any = None
        self._allocator: Any = None
        self.pool: StreamOrderedPool | None = None
        self._cache_path = runtime_cache if backend.is_rtx else None
        backend.require_gpu(f"Running {label}")
        from trtimport.build.trtlog import make_logger

        self._cuda = Cuda()
        # Create the CUDA context now: the RTX runtime cache checks it when deserializing.
        self._cuda(self._cuda.rt.cudaFree(0), "cudaFree(0)")
        trt = backend.trt
        self._logger = make_logger(backend, verbosity)
        self._runtime = trt.Runtime(self._logger)
        if memory_pool:
            from trtimport.runtime.allocator import make_gpu_allocator

            self.pool = StreamOrderedPool(self._cuda)
            self._allocator = make_gpu_allocator(backend, self.pool)
            self._runtime.gpu_allocator = self._allocator
        self._engine = self._runtime.deserialize_cuda_engine(bytes(data))
        if self._engine is None:
            errors = "; ".join(getattr(self._logger, "errors", [])) or "no details"
            raise ModelParseError(
                f"{label}: {backend.name} {backend.version} could not deserialize the engine "
                f"({errors}). Engines only load in the TensorRT version and on the GPUs they "
                "were built for; rebuild it here."
            )
        engine = self._engine
        io = []
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            # Shape-tensor inputs are read on the host (TensorLocation.HOST).
            on_host = is_input and engine.get_tensor_location(name) == trt.TensorLocation.HOST
            io.append(IoTensor(name, is_input, self._numpy_dtype(name), on_host))
        user_managed = backend.has("user_managed_memory") and backend.has("set_device_memory")
        config = self._runtime_config(cuda_graph, user_managed)
        contexts = [self._context(config, user_managed) for _ in range(streams)]
        scratch = ScratchPlan(
            int(engine.device_memory_size_v2) if user_managed else None, shared=shared_scratch
        )
        builtin_graphs = cuda_graph and config is not None and backend.has("builtin_cuda_graphs")
        if builtin_graphs:
            self.add_note("CUDA graph: TensorRT-RTX captures and replays graphs itself")
        self._session = EngineSession(
            self._cuda,
            io,
            contexts,
            label=label,
            profiles=self._profiles(io),
            scratch=scratch,
            cuda_graph=cuda_graph and not builtin_graphs,
            capturable=(
                (lambda context, stream: bool(context.is_stream_capturable(stream)))
                if backend.has("stream_capturable_query")
                else None
            ),
            note=self.add_note,
        )

    @classmethod
    def from_file(
        cls,
        engine: Path,
        *,
        streams: int = 1,
        cuda_graph: bool = False,
        shared_scratch: bool = False,
        memory_pool: bool = False,
        verbosity: int = 0,
    ) -> TensorRTRunner:
        """Open an engine written by trtimport (its sidecar gives the backend and I/O)."""
        engine = Path(engine)
        sidecar = read_sidecar(engine)
        inputs, outputs = engine_io(engine, sidecar)
        backend = engine_backend(engine, sidecar)
        problem = backend.gpu_support_problem()
        if problem:
            source = (sidecar.get("source") or {}).get("model", "MODEL")
            raise NoGpuError(
                f"Running the engine {engine} needs a GPU that {backend.name} "
                f"{backend.version} can run engines on: {problem}. Engines run only on "
                "TensorRT; on this machine run the model it was built from on the CPU instead: "
                f"`trtimport run {source} --backend onnxruntime`."
            )
        check_engine_file(engine, sidecar)
        return cls(
            engine.read_bytes(),
            backend,
            inputs,
            outputs,
            label=str(engine),
            streams=streams,
            cuda_graph=cuda_graph,
            shared_scratch=shared_scratch,
            memory_pool=memory_pool,
            runtime_cache=runtime_cache_path(engine, sidecar),
            verbosity=verbosity,
        )

    def _numpy_dtype(self, name: str) -> np.dtype:
        dtype = self._engine.get_tensor_dtype(name)
        try:
            return np.dtype(self.backend.trt.nptype(dtype))
        except (TypeError, KeyError) as err:
            raise InferenceError(
                f"{self.label}: I/O tensor '{name}' has type {dtype}, which numpy cannot hold; "
                "build the engine with float32/float16 inputs and outputs"
            ) from err

    def _runtime_config(self, cuda_graph: bool, user_managed: bool) -> Any:
        """The runtime config contexts are made from (TensorRT-RTX), or None.

        It carries the runtime cache loaded from disk, the USER_MANAGED allocation strategy and,
        with ``cuda_graph``, RTX's own whole-graph capture.
        """
        backend = self.backend
        if not backend.is_rtx or not backend.has("runtime_config"):
            return None
        trt = backend.trt
        config = self._engine.create_runtime_config()
        if backend.has("runtime_cache"):
            cache = config.create_runtime_cache()
            path = self._cache_path
            if path is not None and path.is_file() and not cache.deserialize(path.read_bytes()):
                self.add_note(f"ignored the runtime cache {path}: it does not fit this GPU/version")
            config.set_runtime_cache(cache)
            self._cache = cache
        if user_managed:
            config.set_execution_context_allocation_strategy(
                trt.ExecutionContextAllocationStrategy.USER_MANAGED
            )
        if cuda_graph and backend.has("builtin_cuda_graphs"):
            config.cuda_graph_strategy = trt.CudaGraphStrategy.WHOLE_GRAPH_CAPTURE
        self._config = config
        return config

    def _context(self, config: Any, user_managed: bool) -> Any:
        engine, trt = self._engine, self.backend.trt
        if config is not None:
            context = engine.create_execution_context(config)
        elif user_managed:
            context = engine.create_execution_context(
                trt.ExecutionContextAllocationStrategy.USER_MANAGED
            )
        else:
            context = engine.create_execution_context()
        if context is None:
            raise InferenceError(f"{self.label}: could not create an execution context")
        return context

    def _profiles(self, io: list[IoTensor]) -> ProfileRanges:
        """Each optimization profile's accepted input shapes (values, for shape tensors)."""
        engine = self._engine
        profiles: ProfileRanges = []
        for p in range(int(engine.num_optimization_profiles)):
            ranges = {}
            for t in io:
                if not t.is_input:
                    continue
                if t.on_host:
                    # The bindings take (profile index, name) whatever their argument names say.
                    lo, _, hi = engine.get_tensor_profile_values(p, t.name)
                else:
                    lo, _, hi = engine.get_tensor_profile_shape(t.name, p)
                ranges[t.name] = (tuple(int(d) for d in lo), tuple(int(d) for d in hi))
            profiles.append(ranges)
        return profiles

    @property
    def session(self) -> EngineSession:
        """The GPU half (raises once closed)."""
        if self._session is None:
            raise UsageError(f"{self.label}: the runner is closed")
        return self._session

    @property
    def cuda_graph(self) -> bool:
        """True while queries are replayed from CUDA graphs."""
        return self._session is not None and self._session.cuda_graph

    def inputs(self) -> list[TensorSpec]:
        """The engine's inputs (dynamic dims as None)."""
        return list(self._inputs)

    def outputs(self) -> list[TensorSpec]:
        """The engine's outputs."""
        return list(self._outputs)

    def infer(
        self, feeds: dict[str, np.ndarray], outputs: list[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Run once on the first stream; ``outputs`` must be engine outputs."""
        session = self.session
        wanted = list(outputs) if outputs is not None else list(session.outputs)
        unknown = [n for n in wanted if n not in session.outputs]
        if unknown:
            raise OutputMarkingError(
                f"{self.label}: {', '.join(map(repr, unknown))} are not outputs of the engine "
                f"({', '.join(session.outputs)}); build it with --output NAME to read them"
            )
        return session.infer(feeds, wanted)

    def launcher(
        self, feeds: dict[str, np.ndarray], *, transfers: bool = True, spin_wait: bool = False
    ) -> Launcher:
        """trtexec's loop over every stream, timed with CUDA events (see GpuLauncher)."""
        return GpuLauncher(self.session, feeds, transfers=transfers, spin_wait=spin_wait)

    def memory(self) -> dict[str, Any]:
        """Scratch memory per context and, with a pool, what TensorRT took from it."""
        session = self.session
        facts = session.scratch.as_dict(len(session.slots))
        if self.pool is not None:
            facts["pool"] = self.pool.stats()
        return facts

    def save_runtime_cache(self) -> Path | None:
        """Write the TensorRT-RTX runtime cache beside the engine (atomically)."""
        if self._cache is None or self._cache_path is None:
            return None
        from trtimport.core.files import write_atomic

        write_atomic(self._cache_path, memoryview(self._cache.serialize()))
        return self._cache_path

    def close(self) -> None:
        """Save the runtime cache and release contexts, streams and buffers (safe twice)."""
        try:
            if self._session is not None:
                self.save_runtime_cache()
        finally:
            # Contexts go before the runtime config and cache, the engine, then the runtime.
            if self._session is not None:
                self._session.close()
                self._session = None
            self._config = self._cache = None
            self._engine = self._runtime = None
            self._allocator = None
