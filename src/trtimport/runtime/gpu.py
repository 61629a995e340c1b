"""GPU mechanics of the TensorRT runner, written against cuda-python and an execution context.

Nothing here imports TensorRT. :class:`EngineSession` drives any object with TensorRT's
execution-context methods (``set_input_shape``, ``get_tensor_shape``, ``set_tensor_address``,
``set_optimization_profile_async``, ``set_device_memory``, ``execute_async_v3``): the TensorRT
runner gives it real contexts, and the GPU tests give it a stand-in context that queues real GPU
copies, so buffers, streams, events, CUDA graphs, scratch memory and the benchmark launcher are
tested on a GPU without a TensorRT engine.

Each execution context is a :class:`Slot` with three CUDA streams (input copies, compute, output
copies) and two sets of events, so that, as in trtexec, two queries per context can be in flight:
one's input copy overlaps the other's compute.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trtimport.core.runner import IterationTrace, Launcher
from trtimport.errors import InferenceError, ShapeError, UsageError
from trtimport.runtime.cuda_api import NOT_READY, Buffer, Cuda

#: Queries in flight per execution context (trtexec's default inference depth).
DEPTH = 2


@dataclass(frozen=True)
class IoTensor:
    """One engine I/O tensor as the GPU mechanics see it."""

    name: str
    is_input: bool
    dtype: np.dtype
    #: True for shape tensors, which TensorRT keeps in host memory.
    on_host: bool = False


#: Per profile: input name -> (min shape, max shape); for shape tensors, min and max values.
ProfileRanges = list[dict[str, tuple[tuple[int, ...], tuple[int, ...]]]]


def choose_profile(
    profiles: ProfileRanges, shapes: dict[str, tuple[int, ...]], current: int = 0
) -> int | None:
    """The first optimization profile (the current one preferred) that accepts ``shapes``."""

    def fits(ranges: dict[str, tuple[tuple[int, ...], tuple[int, ...]]]) -> bool:
        for name, (lo, hi) in ranges.items():
            shape = shapes.get(name)
            if shape is None or len(shape) != len(lo):
                return False
            if any(not a <= d <= b for d, a, b in zip(shape, lo, hi, strict=True)):
                return False
        return True

    if not profiles:
        return 0
    order = [current, *[i for i in range(len(profiles)) if i != current]]
    return next((i for i in order if i < len(profiles) and fits(profiles[i])), None)


class Slot:
    """One execution context with its three streams, two event sets, buffers and CUDA graph."""

    #: Event indices within one set.
    H2D_START, H2D_END, COMPUTE_START, COMPUTE_END, D2H_START, D2H_END = range(6)

    def __init__(self, cuda: Cuda, context: Any, *, spin_wait: bool = False) -> None:
        self.cuda = cuda
        self.context = context
        self.streams: list[Any] = []
        self.events: list[list[Any]] = []
        self.buffers: dict[str, Buffer] = {}
        self.scratch = 0
        #: (input shapes, shape-tensor values) the context is set up for.
        self.key: Any = None
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.profile = 0
        self.graph: Any = None
        self.graph_exec: Any = None
        #: Per depth entry: (enqueue start, enqueue end) of the query in flight, or None.
        self.pending: list[tuple[float, float, bool] | None] = [None] * DEPTH
        self.next = 0
        rt = cuda.rt
        try:
            for what in ("input", "compute", "output"):
                self.streams.append(
                    cuda(rt.cudaStreamCreateWithFlags(rt.cudaStreamNonBlocking), f"{what} stream")
                )
            self.make_events(spin_wait)
        except BaseException:
            self.close()
            raise

    @property
    def input_stream(self) -> Any:
        """Stream of the host-to-device copies."""
        return self.streams[0]

    @property
    def compute_stream(self) -> Any:
        """Stream that runs the engine."""
        return self.streams[1]

    @property
    def output_stream(self) -> Any:
        """Stream of the device-to-host copies."""
        return self.streams[2]

    @property
    def handle(self) -> int:
        """The compute stream as the integer handle TensorRT's Python API takes."""
        return int(self.compute_stream)

    def make_events(self, spin_wait: bool) -> None:
        """(Re)create the event sets: blocking-sync events unless the host spin-waits."""
        rt = self.cuda.rt
        self.destroy_events()
        flags = rt.cudaEventDefault if spin_wait else rt.cudaEventBlockingSync
        for _ in range(DEPTH):
            group: list[Any] = []
            self.events.append(group)
            for _ in range(6):
                group.append(self.cuda(rt.cudaEventCreateWithFlags(flags), "cudaEventCreate"))

    def destroy_events(self) -> None:
        """Destroy every event of the slot."""
        rt = self.cuda.rt
        groups, self.events = self.events, []
        for group in groups:
            for event in group:
                self.cuda(rt.cudaEventDestroy(event), "cudaEventDestroy")

    def drop_graph(self) -> None:
        """Destroy the captured graph (shapes or addresses changed)."""
        rt = self.cuda.rt
        graph_exec, graph = self.graph_exec, self.graph
        self.graph = self.graph_exec = None
        if graph_exec is not None:
            self.cuda(rt.cudaGraphExecDestroy(graph_exec), "cudaGraphExecDestroy")
        if graph is not None:
            self.cuda(rt.cudaGraphDestroy(graph), "cudaGraphDestroy")

    def close(self) -> None:
        """Release every CUDA object of the slot (safe after a failed __init__, and twice)."""
        rt = self.cuda.rt
        self.drop_graph()
        for buffer in self.buffers.values():
            buffer.free()
        self.buffers = {}
        self.destroy_events()
        streams, self.streams = self.streams, []
        for stream in streams:
            self.cuda(rt.cudaStreamDestroy(stream), "cudaStreamDestroy")


@dataclass
class ScratchPlan:
    """How the contexts' scratch (activation) memory is provided."""

    #: Bytes one context needs (the engine's device_memory_size_v2); None: TensorRT allocates.
    bytes_each: int | None
    #: One buffer for every context (they never run at once) instead of one each.
    shared: bool = False
    blocks: list[int] = field(default_factory=list)

    def as_dict(self, contexts: int) -> dict[str, Any]:
        """JSON-friendly form for ``bench``."""
        if self.bytes_each is None:
            return {"managed_by": "tensorrt", "shared": False, "bytes_each": None}
        total = self.bytes_each * (1 if self.shared else contexts)
        return {
            "managed_by": "trtimport",
            "shared": self.shared,
            "bytes_each": self.bytes_each,
            "total_bytes": total,
        }


class EngineSession:
    """Execution contexts of one engine, their buffers and queries (the runner's GPU half)."""

    def __init__(
        self,
        cuda: Cuda,
        io: list[IoTensor],
        contexts: list[Any],
        *,
        label: str,
        profiles: ProfileRanges | None = None,
        scratch: ScratchPlan | None = None,
        cuda_graph: bool = False,
        capturable: Callable[[Any, int], bool] | None = None,
        note: Callable[[str], None] = lambda message: None,
    ) -> None:
        """Set up one slot per context; ``capturable(context, stream)`` asks before capture."""
        self.cuda = cuda
        self.label = label
        self.io = {t.name: t for t in io}
        self.inputs = [t.name for t in io if t.is_input]
        self.outputs = [t.name for t in io if not t.is_input]
        self.profiles = profiles or []
        self.scratch = scratch or ScratchPlan(None)
        self.cuda_graph = cuda_graph
        self.capturable = capturable
        self.note = note
        self.slots: list[Slot] = []
        try:
            for context in contexts:
                self.slots.append(Slot(cuda, context))
            self._bind_scratch()
        except BaseException:
            self.close()
            raise

    def _bind_scratch(self) -> None:
        plan = self.scratch
        if plan.bytes_each is None:
            return
        rt, size = self.cuda.rt, max(plan.bytes_each, 1)
        for i, slot in enumerate(self.slots):
            if i == 0 or not plan.shared:
                plan.blocks.append(self.cuda(rt.cudaMalloc(size), "cudaMalloc (scratch)"))
            slot.scratch = plan.blocks[-1]
            slot.context.set_device_memory(slot.scratch, size)

    # -- shapes and buffers ---------------------------------------------------------------------

    def prepare(self, slot: Slot, feeds: dict[str, np.ndarray]) -> None:
        """Pick the profile, set input shapes and shape-tensor values, size and bind buffers."""
        missing = [n for n in self.inputs if n not in feeds]
        if missing:
            raise UsageError(f"{self.label}: missing input(s) {', '.join(missing)}")
        shapes = {n: tuple(int(d) for d in np.shape(feeds[n])) for n in self.inputs}
        values = {
            n: tuple(int(v) for v in np.asarray(feeds[n]).reshape(-1))
            for n in self.inputs
            if self.io[n].on_host
        }
        key = (shapes, values)
        if key == slot.key:
            return
        slot.key = None
        self._select_profile(slot, {**shapes, **values})
        context = slot.context
        for name in self.inputs:
            if not context.set_input_shape(name, shapes[name]):
                raise ShapeError(
                    f"{self.label}: input '{name}' has shape {list(shapes[name])}; "
                    f"{self._accepted(name)}"
                )
        # Shape-tensor values must be in place, and bound (host memory), before output shapes
        # are asked for.
        for name in values:
            self._stage(slot, name, feeds[name])
            if not context.set_tensor_address(name, slot.buffers[name].address):
                raise InferenceError(f"{self.label}: could not bind tensor '{name}'")
        all_shapes = dict(shapes)
        for name in self.outputs:
            dims = tuple(int(d) for d in context.get_tensor_shape(name))
            if any(d < 0 for d in dims):
                raise InferenceError(
                    f"{self.label}: output '{name}' has a data-dependent shape {list(dims)}, "
                    "which the runner does not support; run the model on ONNX Runtime"
                )
            all_shapes[name] = dims
        for name, shape in all_shapes.items():
            buffer = self._buffer(slot, name)
            buffer.ensure(int(np.prod(shape)) * self.io[name].dtype.itemsize)
            if not context.set_tensor_address(name, buffer.address):
                raise InferenceError(f"{self.label}: could not bind tensor '{name}'")
        slot.drop_graph()  # a captured graph holds the old shapes and addresses
        slot.shapes = all_shapes
        slot.key = key

    def _accepted(self, name: str) -> str:
        ranges = [p[name] for p in self.profiles if name in p]
        if not ranges:
            return "the engine does not accept it"
        shown = "; ".join(f"{list(lo)} to {list(hi)}" for lo, hi in ranges)
        return f"the engine's profiles take shapes from {shown}"

    def _select_profile(self, slot: Slot, shapes: dict[str, tuple[int, ...]]) -> None:
        if len(self.profiles) <= 1:
            return
        chosen = choose_profile(self.profiles, shapes, slot.profile)
        if chosen is None:
            name = next(iter(self.profiles[0]))
            raise ShapeError(
                f"{self.label}: no optimization profile accepts the inputs' shapes "
                f"{ {n: list(s) for n, s in shapes.items()} }; for '{name}', "
                f"{self._accepted(name)}"
            )
        if chosen == slot.profile:
            return
        try:
            ok = slot.context.set_optimization_profile_async(chosen, slot.handle)
        except RuntimeError as err:  # TensorRT raises; TensorRT-RTX returns False
            raise InferenceError(f"{self.label}: could not switch to profile {chosen}") from err
        if ok is False:
            raise InferenceError(f"{self.label}: could not switch to profile {chosen}")
        self.synchronize(slot.compute_stream)
        slot.profile = chosen

    def _buffer(self, slot: Slot, name: str) -> Buffer:
        if name not in slot.buffers:
            slot.buffers[name] = Buffer(self.cuda, host_only=self.io[name].on_host)
        return slot.buffers[name]

    def _stage(self, slot: Slot, name: str, value: np.ndarray) -> None:
        array = np.ascontiguousarray(value, dtype=self.io[name].dtype)
        buffer = self._buffer(slot, name)
        buffer.ensure(array.nbytes)
        buffer.view[: array.nbytes] = array.view(np.uint8).reshape(-1)

    def stage_inputs(self, slot: Slot, feeds: dict[str, np.ndarray]) -> None:
        """Copy the feeds into the slot's pinned host buffers."""
        for name in self.inputs:
            self._stage(slot, name, feeds[name])

    def nbytes(self, slot: Slot, name: str) -> int:
        """Bytes of tensor ``name`` at the slot's current shapes."""
        return int(np.prod(slot.shapes[name])) * self.io[name].dtype.itemsize

    def _copy(self, slot: Slot, names: list[str], to_device: bool, stream: Any) -> None:
        rt = self.cuda.rt
        kind = (
            rt.cudaMemcpyKind.cudaMemcpyHostToDevice
            if to_device
            else rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        )
        for name in names:
            if self.io[name].on_host:
                continue
            buf, size = slot.buffers[name], self.nbytes(slot, name)
            dst, src = (buf.device, buf.host) if to_device else (buf.host, buf.device)
            self.cuda(rt.cudaMemcpyAsync(dst, src, size, kind, stream), "memcpy")

    def upload(self, slot: Slot) -> None:
        """Copy the staged inputs to the device and wait (before timing without transfers)."""
        self._copy(slot, self.inputs, True, slot.input_stream)
        self.synchronize(slot.input_stream)

    def synchronize(self, stream: Any) -> None:
        """Wait for ``stream``."""
        self.cuda(self.cuda.rt.cudaStreamSynchronize(stream), "cudaStreamSynchronize")

    # -- running --------------------------------------------------------------------------------

    def _execute(self, slot: Slot) -> None:
        if not slot.context.execute_async_v3(slot.handle):
            raise InferenceError(f"{self.label}: execute_async_v3 failed")

    def capture(self, slot: Slot) -> bool:
        """Capture the slot's enqueue in a CUDA graph, after one plain run as TensorRT asks.

        When the context says it cannot be captured, or the capture is invalidated (TensorRT
        queued something a graph cannot hold: cudaStreamEndCapture fails), the error is cleared,
        a note says so and every slot runs without a graph from then on, as trtexec does.
        """
        cuda, rt = self.cuda, self.cuda.rt
        self._execute(slot)
        self.synchronize(slot.compute_stream)
        if self.capturable is not None and not self.capturable(slot.context, slot.handle):
            return self._no_graph("the execution context says it cannot be captured")
        mode = rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
        cuda(rt.cudaStreamBeginCapture(slot.compute_stream, mode), "cudaStreamBeginCapture")
        ok = False
        try:
            ok = bool(slot.context.execute_async_v3(slot.handle))
        finally:
            err, graph = rt.cudaStreamEndCapture(slot.compute_stream)
        if int(err) != 0 or not ok or graph is None:
            if graph is not None and int(err) == 0:
                cuda(rt.cudaGraphDestroy(graph), "cudaGraphDestroy")
            rt.cudaGetLastError()  # clear the error the failed capture left pending
            why = cuda.error_text(err) if int(err) != 0 else "execute_async_v3 failed"
            return self._no_graph(f"the capture was invalidated ({why})")
        slot.graph = graph
        slot.graph_exec = cuda(rt.cudaGraphInstantiate(graph, 0), "cudaGraphInstantiate")
        return True

    def _no_graph(self, why: str) -> bool:
        self.note(f"CUDA graph: {why}; running without a graph")
        self.cuda_graph = False
        for slot in self.slots:
            slot.drop_graph()
        return False

    def ready(self, slot: Slot, feeds: dict[str, np.ndarray]) -> None:
        """Prepare shapes and buffers, stage the feeds and capture the graph if one is wanted."""
        self.prepare(slot, feeds)
        self.stage_inputs(slot, feeds)
        if self.cuda_graph and slot.graph_exec is None:
            self._copy(slot, self.inputs, True, slot.compute_stream)
            self.capture(slot)

    def query(
        self, slot: Slot, entry: int, transfers: bool, after: Any = None
    ) -> tuple[float, float]:
        """Queue one query as trtexec does; returns the host times around the enqueue alone.

        Input copies go on the input stream, the engine on the compute stream (after the copies'
        end event, and after ``after``, an event of another slot, if given), the output copies
        on the output stream after compute. Only ``execute_async_v3`` (or the graph launch) is
        inside the enqueue interval, as in trtexec.
        """
        cuda, rt = self.cuda, self.cuda.rt
        ev = slot.events[entry]
        compute = slot.compute_stream
        if transfers:
            cuda(rt.cudaEventRecord(ev[Slot.H2D_START], slot.input_stream), "cudaEventRecord")
            self._copy(slot, self.inputs, True, slot.input_stream)
            cuda(rt.cudaEventRecord(ev[Slot.H2D_END], slot.input_stream), "cudaEventRecord")
            cuda(rt.cudaStreamWaitEvent(compute, ev[Slot.H2D_END], 0), "cudaStreamWaitEvent")
        if after is not None:
            cuda(rt.cudaStreamWaitEvent(compute, after, 0), "cudaStreamWaitEvent")
        cuda(rt.cudaEventRecord(ev[Slot.COMPUTE_START], compute), "cudaEventRecord")
        start = time.perf_counter()
        if slot.graph_exec is not None:
            cuda(rt.cudaGraphLaunch(slot.graph_exec, compute), "cudaGraphLaunch")
        else:
            self._execute(slot)
        end = time.perf_counter()
        cuda(rt.cudaEventRecord(ev[Slot.COMPUTE_END], compute), "cudaEventRecord")
        if transfers:
            out = slot.output_stream
            cuda(rt.cudaStreamWaitEvent(out, ev[Slot.COMPUTE_END], 0), "cudaStreamWaitEvent")
            cuda(rt.cudaEventRecord(ev[Slot.D2H_START], out), "cudaEventRecord")
            self._copy(slot, self.outputs, False, out)
            cuda(rt.cudaEventRecord(ev[Slot.D2H_END], out), "cudaEventRecord")
        return start, end

    def wait(self, event: Any, spin: bool) -> None:
        """Wait for ``event``: poll it (spin-wait) or block on it."""
        rt = self.cuda.rt
        if not spin:
            self.cuda(rt.cudaEventSynchronize(event), "cudaEventSynchronize")
            return
        while True:
            (err,) = rt.cudaEventQuery(event)
            if int(err) != NOT_READY:
                self.cuda((err,), "cudaEventQuery")
                return

    def infer(self, feeds: dict[str, np.ndarray], wanted: list[str]) -> dict[str, np.ndarray]:
        """Run once on the first slot and return the ``wanted`` outputs."""
        slot = self.slots[0]
        self.ready(slot, feeds)
        self.query(slot, 0, transfers=True)
        self.wait(slot.events[0][Slot.D2H_END], spin=False)
        result = {}
        for name in wanted:
            raw = slot.buffers[name].view[: self.nbytes(slot, name)].copy()
            result[name] = raw.view(self.io[name].dtype).reshape(slot.shapes[name])
        return result

    def elapsed_ms(self, start: Any, end: Any) -> float:
        """Milliseconds between two recorded events."""
        rt = self.cuda.rt
        return float(self.cuda(rt.cudaEventElapsedTime(start, end), "cudaEventElapsedTime"))

    def close(self) -> None:
        """Release slots and scratch memory (safe twice)."""
        slots, self.slots = self.slots, []
        for slot in slots:
            slot.close()
        blocks, self.scratch.blocks = self.scratch.blocks, []
        for block in blocks:
            self.cuda(self.cuda.rt.cudaFree(block), "cudaFree")


class GpuLauncher(Launcher):
    """trtexec's inference loop: queries round-robin over the slots, two in flight per slot.

    Stage times come from CUDA events (relative to an origin event recorded when the launcher
    starts), enqueue times from the host clock around the enqueue alone. With a shared scratch
    buffer, each query's compute also waits for the previous query's compute, so contexts that
    share it never run at once. Every slot is prepared (and its graph captured) before the first
    timed query.
    """

    def __init__(
        self,
        session: EngineSession,
        feeds: dict[str, np.ndarray],
        *,
        transfers: bool = True,
        spin_wait: bool = False,
    ) -> None:
        super().__init__()
        self.session = session
        self.transfers = transfers
        self.spin_wait = spin_wait
        self.done: list[IterationTrace] = []
        self.next = 0
        self.last_compute: Any = None
        cuda, rt = session.cuda, session.cuda.rt
        for slot in session.slots:
            slot.make_events(spin_wait)
            slot.pending = [None] * DEPTH
            session.ready(slot, feeds)
            if not transfers:
                session.upload(slot)
        self.origin = cuda(rt.cudaEventCreate(), "cudaEventCreate")
        first = session.slots[0]
        cuda(rt.cudaEventRecord(self.origin, first.compute_stream), "cudaEventRecord")
        cuda(rt.cudaEventSynchronize(self.origin), "cudaEventSynchronize")
        self.origin_host = self.elapsed_ms()

    def _finish(self, slot: Slot, entry: int) -> None:
        pending = slot.pending[entry]
        if pending is None:
            return
        slot.pending[entry] = None
        start_enq, end_enq, transfers = pending
        ev = slot.events[entry]
        self.session.wait(ev[Slot.D2H_END if transfers else Slot.COMPUTE_END], self.spin_wait)

        def at(index: int) -> float:
            return self.origin_host + self.session.elapsed_ms(self.origin, ev[index])

        compute = (at(Slot.COMPUTE_START), at(Slot.COMPUTE_END))
        if transfers:
            h2d = (at(Slot.H2D_START), at(Slot.H2D_END))
            d2h = (at(Slot.D2H_START), at(Slot.D2H_END))
            self.done.append(IterationTrace(start_enq, end_enq, *compute, *h2d, *d2h))
        else:
            self.done.append(IterationTrace(start_enq, end_enq, *compute))

    def launch(self) -> None:
        """Enqueue on the next slot, first collecting the query its depth entry still holds."""
        session = self.session
        slot = session.slots[self.next]
        self.next = (self.next + 1) % len(session.slots)
        entry = slot.next
        slot.next = (slot.next + 1) % DEPTH
        self._finish(slot, entry)
        after = self.last_compute if session.scratch.shared else None
        start, end = session.query(slot, entry, self.transfers, after)
        self.last_compute = slot.events[entry][Slot.COMPUTE_END]
        origin = self._t0
        slot.pending[entry] = (
            (start - origin) * 1000.0,
            (end - origin) * 1000.0,
            self.transfers,
        )

    def collect(self) -> list[IterationTrace]:
        """Wait for every slot; traces sorted by enqueue time."""
        for slot in self.session.slots:
            for k in range(DEPTH):
                self._finish(slot, (slot.next + k) % DEPTH)
        done, self.done = sorted(self.done, key=lambda t: t.start_enq), []
        return done

    def close(self) -> None:
        """Destroy the origin event."""
        rt = self.session.cuda.rt
        self.session.cuda(rt.cudaEventDestroy(self.origin), "cudaEventDestroy")
