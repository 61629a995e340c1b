"""Run a serialized TensorRT engine on the GPU through cuda-python.

One execution context per stream ("slot"): each slot has its own CUDA stream, timing events,
device buffers sized from the engine's I/O for the shapes of the current call, and pinned host
buffers. Dynamic input shapes are set per call (``set_input_shape``), tensors are bound with
``set_tensor_address`` and work is enqueued with ``execute_async_v3``. Several slots run
queries concurrently for throughput; each slot may capture its enqueue in a CUDA graph. With
TensorRT-RTX, the runtime cache (JIT-compiled kernels) is loaded from and saved beside the engine.

Nothing here touches CUDA before :meth:`Backend.require_gpu` has confirmed a usable GPU; without
one, :class:`NoGpuError` says what is missing and which backend runs instead. The GPU part of
this module has not been run on this project's machines (they have no GPU).
"""

from __future__ import annotations

import ctypes
import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from trtimport.build.engine import read_sidecar
from trtimport.core.backend import Backend, get_backend
from trtimport.core.runner import IterationTrace, Launcher, Runner, TensorSpec
from trtimport.errors import (
    InferenceError,
    MissingDependencyError,
    ModelParseError,
    NoGpuError,
    OutputMarkingError,
    ShapeError,
    UsageError,
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


def _spec(entry: dict[str, Any], engine: Path) -> TensorSpec:
    try:
        shape = tuple(None if int(d) < 0 else int(d) for d in entry["shape"])
        return TensorSpec(str(entry["name"]), shape, np.dtype(str(entry["dtype"])))
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


def _cudart() -> Any:
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart  # cuda-python before 12.6
        except ImportError as err:
            raise MissingDependencyError(
                "Running TensorRT engines", "runtime", module="cuda-python"
            ) from err
    return cudart


class _Cuda:
    """cuda-python's runtime API with errors turned into :class:`InferenceError`."""

    def __init__(self) -> None:
        self.rt = _cudart()

    def __call__(self, result: Any, what: str) -> Any:
        """Unpack ``(err, *values)``; raise on anything but cudaSuccess."""
        err, *values = result if isinstance(result, tuple) else (result,)
        if int(err) != 0:
            _, text = self.rt.cudaGetErrorString(err)
            message = text.decode() if isinstance(text, bytes) else str(text)
            raise InferenceError(f"CUDA call {what} failed: {message} ({err})")
        if not values:
            return None
        return values[0] if len(values) == 1 else tuple(values)


def _host_view(address: int, nbytes: int) -> np.ndarray:
    """A uint8 numpy view of pinned host memory."""
    return np.frombuffer(memoryview((ctypes.c_uint8 * nbytes).from_address(address)), np.uint8)


class _Buffer:
    """A device allocation and its pinned host twin, grown on demand."""

    def __init__(self, cuda: _Cuda) -> None:
        self.cuda = cuda
        self.capacity = 0
        self.device = 0
        self.host = 0
        self.view = np.empty(0, np.uint8)

    def ensure(self, nbytes: int) -> None:
        """Make room for ``nbytes`` (reallocating both buffers if they are too small)."""
        nbytes = max(nbytes, 1)
        if nbytes <= self.capacity:
            return
        self.free()
        rt = self.cuda.rt
        self.device = self.cuda(rt.cudaMalloc(nbytes), "cudaMalloc")
        self.host = self.cuda(rt.cudaMallocHost(nbytes), "cudaMallocHost")
        self.view = _host_view(self.host, nbytes)
        self.capacity = nbytes

    def free(self) -> None:
        """Release both allocations."""
        rt = self.cuda.rt
        if self.device:
            self.cuda(rt.cudaFree(self.device), "cudaFree")
        if self.host:
            self.cuda(rt.cudaFreeHost(self.host), "cudaFreeHost")
        self.device = self.host = self.capacity = 0
        self.view = np.empty(0, np.uint8)


class _Slot:
    """One execution context with its stream, events, buffers and optional CUDA graph."""

    def __init__(self, cuda: _Cuda, context: Any) -> None:
        rt = cuda.rt
        self.cuda = cuda
        self.context = context
        self.stream = cuda(rt.cudaStreamCreateWithFlags(rt.cudaStreamNonBlocking), "stream")
        #: The stream as the integer handle TensorRT's Python API takes.
        self.handle = int(self.stream)
        # h2d start, h2d end / compute start, compute end / d2h start, d2h end
        self.events = [cuda(rt.cudaEventCreate(), "cudaEventCreate") for _ in range(4)]
        self.buffers: dict[str, _Buffer] = {}
        #: Shapes of every I/O tensor for the current inputs, and the inputs' shapes alone.
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.input_shapes: dict[str, tuple[int, ...]] = {}
        self.graph: Any = None
        self.graph_exec: Any = None
        self.pending: tuple[float, float] | None = None

    def drop_graph(self) -> None:
        """Destroy the captured graph (shapes or addresses changed)."""
        rt = self.cuda.rt
        if self.graph_exec is not None:
            self.cuda(rt.cudaGraphExecDestroy(self.graph_exec), "cudaGraphExecDestroy")
        if self.graph is not None:
            self.cuda(rt.cudaGraphDestroy(self.graph), "cudaGraphDestroy")
        self.graph = self.graph_exec = None

    def close(self) -> None:
        """Release every CUDA object of the slot."""
        rt = self.cuda.rt
        self.drop_graph()
        for buffer in self.buffers.values():
            buffer.free()
        for event in self.events:
            self.cuda(rt.cudaEventDestroy(event), "cudaEventDestroy")
        self.cuda(rt.cudaStreamDestroy(self.stream), "cudaStreamDestroy")


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
        runtime_cache: Path | None = None,
        verbosity: int = 0,
    ) -> None:
        """Deserialize ``data`` and set up ``streams`` execution contexts (needs a GPU)."""
        if streams < 1:
            raise UsageError("--streams must be at least 1")
        self.label = label
        self.backend = backend
        self._inputs = inputs
        self._outputs = outputs
        self.cuda_graph = cuda_graph
        self._slots: list[_Slot] = []
        self._cache: Any = None
        self._config: Any = None
        self._engine: Any = None
        self._runtime: Any = None
        self._cache_path = runtime_cache if backend.is_rtx else None
        backend.require_gpu(f"Running {label}")
        from trtimport.build.trtlog import make_logger

        self._cuda = _Cuda()
        # Create the CUDA context now: the RTX runtime cache checks it when deserializing.
        self._cuda(self._cuda.rt.cudaFree(0), "cudaFree(0)")
        trt = backend.trt
        self._logger = make_logger(backend, verbosity)
        self._runtime = trt.Runtime(self._logger)
        self._engine = self._runtime.deserialize_cuda_engine(bytes(data))
        if self._engine is None:
            errors = "; ".join(getattr(self._logger, "errors", [])) or "no details"
            raise ModelParseError(
                f"{label}: {backend.name} {backend.version} could not deserialize the engine "
                f"({errors}). Engines only load in the TensorRT version and on the GPUs they "
                "were built for; rebuild it here."
            )
        self._modes: dict[str, bool] = {}
        for i in range(self._engine.num_io_tensors):
            name = self._engine.get_tensor_name(i)
            self._modes[name] = self._engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
        self._dtypes = {n: self._numpy_dtype(n) for n in self._modes}
        self._input_names = [n for n, is_in in self._modes.items() if is_in]
        self._output_names = [n for n, is_in in self._modes.items() if not is_in]
        config = self._runtime_config()
        try:
            for _ in range(streams):
                context = (
                    self._engine.create_execution_context(config)
                    if config is not None
                    else self._engine.create_execution_context()
                )
                if context is None:
                    raise InferenceError(f"{label}: could not create an execution context")
                self._slots.append(_Slot(self._cuda, context))
        except BaseException:
            self.close()
            raise

    @classmethod
    def from_file(
        cls, engine: Path, *, streams: int = 1, cuda_graph: bool = False, verbosity: int = 0
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
            runtime_cache=runtime_cache_path(engine, sidecar),
            verbosity=verbosity,
        )

    def _numpy_dtype(self, name: str) -> np.dtype:
        dtype = self._engine.get_tensor_dtype(name)
        try:
            return np.dtype(self.backend.trt.nptype(dtype))
        except TypeError as err:
            raise InferenceError(
                f"{self.label}: I/O tensor '{name}' has type {dtype}, which numpy cannot hold; "
                "build the engine with float32/float16 I/O"
            ) from err

    def _runtime_config(self) -> Any:
        """TensorRT-RTX: a runtime config whose runtime cache is loaded from disk, if any."""
        if not self.backend.is_rtx or not hasattr(self._engine, "create_runtime_config"):
            return None
        config = self._engine.create_runtime_config()
        cache = config.create_runtime_cache()
        path = self._cache_path
        if path is not None and path.is_file() and not cache.deserialize(path.read_bytes()):
            self.add_note(f"ignored the runtime cache {path}: it does not fit this GPU/version")
        config.set_runtime_cache(cache)
        self._cache = cache
        self._config = config
        return config

    def inputs(self) -> list[TensorSpec]:
        """The engine's inputs (dynamic dims as None)."""
        return list(self._inputs)

    def outputs(self) -> list[TensorSpec]:
        """The engine's outputs."""
        return list(self._outputs)

    def _prepare(self, slot: _Slot, shapes: dict[str, tuple[int, ...]]) -> None:
        """Set input shapes, size buffers and bind addresses for one slot."""
        missing = [n for n in self._input_names if n not in shapes]
        if missing:
            raise UsageError(f"{self.label}: missing input(s) {', '.join(missing)}")
        if shapes == slot.input_shapes:
            return
        context = slot.context
        for name in self._input_names:
            if not context.set_input_shape(name, shapes[name]):
                built = [int(d) for d in self._engine.get_tensor_shape(name)]
                accepted = str(built)
                if any(d < 0 for d in built):
                    lo, _, hi = self._engine.get_tensor_profile_shape(name, 0)
                    accepted = f"shapes from {list(lo)} to {list(hi)}"
                raise ShapeError(
                    f"{self.label}: input '{name}' has shape {list(shapes[name])}; the engine "
                    f"takes {accepted}"
                )
        all_shapes = dict(shapes)
        for name in self._output_names:
            dims = tuple(int(d) for d in context.get_tensor_shape(name))
            if any(d < 0 for d in dims):
                raise InferenceError(
                    f"{self.label}: output '{name}' has a data-dependent shape {list(dims)}, "
                    "which the runner does not support; run the model on ONNX Runtime"
                )
            all_shapes[name] = dims
        for name, shape in all_shapes.items():
            buffer = slot.buffers.setdefault(name, _Buffer(self._cuda))
            buffer.ensure(int(np.prod(shape)) * self._dtypes[name].itemsize)
            if not context.set_tensor_address(name, buffer.device):
                raise InferenceError(f"{self.label}: could not bind tensor '{name}'")
        # A captured graph holds the old shapes and addresses.
        slot.drop_graph()
        slot.shapes = all_shapes
        slot.input_shapes = dict(shapes)

    def _stage_inputs(self, slot: _Slot, feeds: dict[str, np.ndarray]) -> None:
        for name in self._input_names:
            array = np.ascontiguousarray(feeds[name], dtype=self._dtypes[name])
            slot.buffers[name].view[: array.nbytes] = array.view(np.uint8).reshape(-1)

    def _capture(self, slot: _Slot) -> None:
        """Capture the slot's enqueue in a CUDA graph (after one plain run, as TensorRT asks)."""
        cuda, rt = self._cuda, self._cuda.rt
        if not slot.context.execute_async_v3(slot.handle):
            raise InferenceError(f"{self.label}: execute_async_v3 failed")
        cuda(rt.cudaStreamSynchronize(slot.stream), "cudaStreamSynchronize")
        if not slot.context.is_stream_capturable(slot.handle):
            self.add_note("this engine cannot be captured in a CUDA graph; ran without")
            self.cuda_graph = False
            return
        mode = rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
        cuda(rt.cudaStreamBeginCapture(slot.stream, mode), "cudaStreamBeginCapture")
        ok = slot.context.execute_async_v3(slot.handle)
        graph = cuda(rt.cudaStreamEndCapture(slot.stream), "cudaStreamEndCapture")
        if not ok:
            cuda(rt.cudaGraphDestroy(graph), "cudaGraphDestroy")
            raise InferenceError(f"{self.label}: execute_async_v3 failed during graph capture")
        slot.graph = graph
        slot.graph_exec = cuda(rt.cudaGraphInstantiate(graph, 0), "cudaGraphInstantiate")

    def _enqueue(self, slot: _Slot, transfers: bool) -> None:
        """Copy inputs in, run, copy outputs out on the slot's stream, recording events."""
        cuda, rt = self._cuda, self._cuda.rt
        h2d, d2h = (
            rt.cudaMemcpyKind.cudaMemcpyHostToDevice,
            rt.cudaMemcpyKind.cudaMemcpyDeviceToHost,
        )
        ev = slot.events
        cuda(rt.cudaEventRecord(ev[0], slot.stream), "cudaEventRecord")
        if transfers:
            for name in self._input_names:
                buf, size = slot.buffers[name], self._nbytes(slot, name)
                cuda(rt.cudaMemcpyAsync(buf.device, buf.host, size, h2d, slot.stream), "H2D copy")
        cuda(rt.cudaEventRecord(ev[1], slot.stream), "cudaEventRecord")
        if self.cuda_graph and slot.graph_exec is None:
            self._capture(slot)
        if slot.graph_exec is not None:
            cuda(rt.cudaGraphLaunch(slot.graph_exec, slot.stream), "cudaGraphLaunch")
        elif not slot.context.execute_async_v3(slot.handle):
            raise InferenceError(f"{self.label}: execute_async_v3 failed")
        cuda(rt.cudaEventRecord(ev[2], slot.stream), "cudaEventRecord")
        if transfers:
            for name in self._output_names:
                buf, size = slot.buffers[name], self._nbytes(slot, name)
                cuda(rt.cudaMemcpyAsync(buf.host, buf.device, size, d2h, slot.stream), "D2H copy")
        cuda(rt.cudaEventRecord(ev[3], slot.stream), "cudaEventRecord")

    def _nbytes(self, slot: _Slot, name: str) -> int:
        return int(np.prod(slot.shapes[name])) * self._dtypes[name].itemsize

    def upload(self, slot: _Slot) -> None:
        """Copy the staged inputs to the device and wait (before timing without transfers)."""
        cuda, rt = self._cuda, self._cuda.rt
        h2d = rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        for name in self._input_names:
            buf, size = slot.buffers[name], self._nbytes(slot, name)
            cuda(rt.cudaMemcpyAsync(buf.device, buf.host, size, h2d, slot.stream), "H2D copy")
        self.synchronize(slot)

    def synchronize(self, slot: _Slot) -> None:
        """Wait for the slot's stream."""
        self._cuda(self._cuda.rt.cudaStreamSynchronize(slot.stream), "cudaStreamSynchronize")

    def infer(
        self, feeds: dict[str, np.ndarray], outputs: list[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Run once on the first stream; ``outputs`` must be engine outputs."""
        wanted = list(outputs) if outputs is not None else list(self._output_names)
        unknown = [n for n in wanted if n not in self._output_names]
        if unknown:
            raise OutputMarkingError(
                f"{self.label}: {', '.join(map(repr, unknown))} are not outputs of the engine "
                f"({', '.join(self._output_names)}); build it with --output NAME to read them"
            )
        slot = self._slots[0]
        self._prepare(slot, {n: tuple(np.shape(feeds[n])) for n in self._input_names if n in feeds})
        self._stage_inputs(slot, feeds)
        self._enqueue(slot, transfers=True)
        self.synchronize(slot)
        result = {}
        for name in wanted:
            nbytes = self._nbytes(slot, name)
            raw = slot.buffers[name].view[:nbytes].copy()
            result[name] = raw.view(self._dtypes[name]).reshape(slot.shapes[name])
        return result

    def launcher(self, feeds: dict[str, np.ndarray], *, transfers: bool = True) -> Launcher:
        """Timed queries round-robin over every stream, timed with CUDA events."""
        return _TensorRTLauncher(self, feeds, transfers)

    def elapsed_ms(self, start: Any, end: Any) -> float:
        """Milliseconds between two recorded events."""
        rt = self._cuda.rt
        return float(self._cuda(rt.cudaEventElapsedTime(start, end), "cudaEventElapsedTime"))

    def save_runtime_cache(self) -> Path | None:
        """Write the TensorRT-RTX runtime cache beside the engine (atomically)."""
        if self._cache is None or self._cache_path is None:
            return None
        from trtimport.core.files import write_atomic

        write_atomic(self._cache_path, memoryview(self._cache.serialize()))
        return self._cache_path

    def close(self) -> None:
        """Save the runtime cache and release contexts, streams and buffers."""
        try:
            if self._slots:
                self.save_runtime_cache()
        finally:
            # Contexts go before the runtime config and cache, the engine, then the runtime.
            for slot in self._slots:
                slot.close()
            self._slots = []
            self._config = self._cache = None
            self._engine = self._runtime = None


class _TensorRTLauncher(Launcher):
    """Issues queries round-robin over the runner's streams; stage times from CUDA events."""

    def __init__(
        self, runner: TensorRTRunner, feeds: dict[str, np.ndarray], transfers: bool
    ) -> None:
        super().__init__()
        self.runner = runner
        self.transfers = transfers
        self.next = 0
        self.done: list[IterationTrace] = []
        cuda, rt = runner._cuda, runner._cuda.rt
        shapes = {n: tuple(np.shape(feeds[n])) for n in runner._input_names}
        for slot in runner._slots:
            runner._prepare(slot, shapes)
            runner._stage_inputs(slot, feeds)
            if not transfers:
                runner.upload(slot)
        self.origin = cuda(rt.cudaEventCreate(), "cudaEventCreate")
        first = runner._slots[0]
        cuda(rt.cudaEventRecord(self.origin, first.stream), "cudaEventRecord")
        cuda(rt.cudaEventSynchronize(self.origin), "cudaEventSynchronize")
        self.origin_host = self.elapsed_ms()

    def _finish(self, slot: _Slot) -> None:
        if slot.pending is None:
            return
        self.runner.synchronize(slot)
        start_enq, end_enq = slot.pending
        slot.pending = None
        t = [self.origin_host + self.runner.elapsed_ms(self.origin, e) for e in slot.events]
        if self.transfers:
            trace = IterationTrace(start_enq, end_enq, t[1], t[2], t[0], t[1], t[2], t[3])
        else:
            trace = IterationTrace(start_enq, end_enq, t[1], t[2])
        self.done.append(trace)

    def launch(self) -> None:
        """Enqueue on the next stream, first collecting the query it still runs."""
        slot = self.runner._slots[self.next]
        self.next = (self.next + 1) % len(self.runner._slots)
        self._finish(slot)
        start = self.elapsed_ms()
        self.runner._enqueue(slot, self.transfers)
        slot.pending = (start, self.elapsed_ms())

    def collect(self) -> list[IterationTrace]:
        """Wait for all streams; traces sorted by enqueue time."""
        for slot in self.runner._slots:
            self._finish(slot)
        done, self.done = sorted(self.done, key=lambda t: t.start_enq), []
        return done

    def close(self) -> None:
        """Destroy the origin event."""
        rt = self.runner._cuda.rt
        self.runner._cuda(rt.cudaEventDestroy(self.origin), "cudaEventDestroy")
