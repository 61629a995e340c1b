"""trtimport's GPU mechanics on a real GPU: buffers, slots, streams, events, CUDA graphs, scratch
memory, the benchmark launcher, the memory pool and the driver probe.

No TensorRT engine runs here: the execution context is ``CopyingStandInContext``
(tests/runtime/gpu_standin.py), which queues real GPU copies. Skipped without a CUDA device
(CI has none); docs/performance.md says where and when these ran.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from gpu_standin import CopyingStandInContext, standin_io

from trtimport.core.backend import probe_gpus

_gpus, _problem = probe_gpus()
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not _gpus, reason=f"no CUDA device: {_problem}"),
]

MIB = 1 << 20


@pytest.fixture(scope="module")
def cuda():
    pytest.importorskip("cuda.bindings.runtime")
    from trtimport.runtime.cuda_api import Cuda

    cuda = Cuda()
    cuda(cuda.rt.cudaFree(0), "cudaFree(0)")
    return cuda


def make_session(cuda, n=1, *, scratch=MIB, shared=False, graph=False, **standin):
    from trtimport.runtime.gpu import EngineSession, ScratchPlan

    dtype = standin.pop("dtype", "float32")
    profiles = standin.get("profiles")
    ranges = [{"x": r} for r in profiles] if profiles else None
    contexts = [CopyingStandInContext(cuda, np.dtype(dtype).itemsize, **standin) for _ in range(n)]
    notes: list[str] = []
    session = EngineSession(
        cuda,
        standin_io(dtype, shape_input=standin.get("shape_input", False)),
        contexts,
        label="stand-in",
        profiles=ranges,
        scratch=ScratchPlan(scratch, shared=shared),
        cuda_graph=graph,
        note=notes.append,
    )
    return session, contexts, notes


def test_buffers_copy_align_grow_and_free_twice(cuda):
    from trtimport.runtime.cuda_api import ALIGNMENT, Buffer

    rt = cuda.rt
    buffer = Buffer(cuda)
    buffer.ensure(1000)
    assert buffer.device % ALIGNMENT == 0 and buffer.capacity == 1000
    data = np.arange(250, dtype=np.float32)
    buffer.view[:1000] = data.view(np.uint8)
    h2d, d2h = rt.cudaMemcpyKind.cudaMemcpyHostToDevice, rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
    cuda(rt.cudaMemcpy(buffer.device, buffer.host, 1000, h2d), "H2D")
    buffer.view[:] = 0
    cuda(rt.cudaMemcpy(buffer.host, buffer.device, 1000, d2h), "D2H")
    np.testing.assert_array_equal(buffer.view[:1000].view(np.float32), data)
    first = buffer.device
    buffer.ensure(10)  # fits: nothing reallocated
    assert buffer.device == first
    buffer.ensure(4 * MIB)
    assert buffer.capacity == 4 * MIB and buffer.device % ALIGNMENT == 0
    buffer.free()
    buffer.free()
    host = Buffer(cuda, host_only=True)
    host.ensure(64)
    assert host.device == 0 and host.address == host.host != 0
    host.free()


@pytest.mark.parametrize("dtype", ["float32", "bool"])
def test_infer_copies_through_scratch_and_rebinds_on_shape_change(cuda, dtype):
    session, (context,), _ = make_session(cuda, dtype=dtype)
    try:
        rng = np.random.default_rng(0)
        for shape in [(3, 5), (3, 5), (40, 7)]:
            x = (rng.random(shape) > 0.5) if dtype == "bool" else rng.random(shape)
            x = x.astype(dtype)
            y = session.infer({"x": x}, ["y"])["y"]
            np.testing.assert_array_equal(y, x)
        assert context.scratch[1] == MIB and context.scratch[0] % 256 == 0
        assert context.executions == 3
    finally:
        session.close()
        session.close()


def test_profile_is_switched_for_shapes_only_a_later_profile_takes(cuda):
    from trtimport.errors import ShapeError

    profiles = [((1,), (4,)), ((5,), (64,))]
    session, (context,), _ = make_session(cuda, profiles=profiles)
    try:
        small, large = np.arange(3, dtype=np.float32), np.arange(10, dtype=np.float32)
        np.testing.assert_array_equal(session.infer({"x": small}, ["y"])["y"], small)
        assert context.profile_calls == []  # profile 0 is the context's own
        np.testing.assert_array_equal(session.infer({"x": large}, ["y"])["y"], large)
        assert [i for i, _ in context.profile_calls] == [1]
        assert context.profile_calls[0][1] == session.slots[0].handle
        with pytest.raises(ShapeError, match=r"\[1\] to \[4\]; \[5\] to \[64\]"):
            session.infer({"x": np.zeros(100, np.float32)}, ["y"])
    finally:
        session.close()


def test_shape_tensor_values_are_in_host_memory_before_output_shapes(cuda):
    session, (context,), _ = make_session(cuda, shape_input=True)
    try:
        x = np.arange(12, dtype=np.float32)
        for shape in ([3, 4], [2, 6]):
            y = session.infer({"x": x, "s": np.array(shape, np.int64)}, ["y"])["y"]
            np.testing.assert_array_equal(y, x.reshape(shape))
        slot = session.slots[0]
        assert slot.buffers["s"].device == 0
        assert context.addresses["s"] == slot.buffers["s"].host
    finally:
        session.close()


def test_graph_captured_replayed_and_recaptured_on_shape_change(cuda):
    session, (context,), notes = make_session(cuda, graph=True)
    try:
        rng = np.random.default_rng(1)
        for shape in [(8,), (8,), (8,), (33,)]:
            x = rng.random(shape).astype(np.float32)
            np.testing.assert_array_equal(session.infer({"x": x}, ["y"])["y"], x)
        assert session.slots[0].graph_exec is not None and session.cuda_graph
        # one plain run and one captured run per capture (two captures); replays run no Python
        assert context.executions == 4 and notes == []
    finally:
        session.close()


def test_invalidated_capture_is_cleared_and_runs_without_graph(cuda):
    session, (_context,), notes = make_session(cuda, graph=True, invalidate_capture=True)
    try:
        x = np.arange(16, dtype=np.float32)
        np.testing.assert_array_equal(session.infer({"x": x}, ["y"])["y"], x)
        assert not session.cuda_graph and session.slots[0].graph_exec is None
        assert len(notes) == 1 and "capture was invalidated" in notes[0]
        assert int(cuda.rt.cudaGetLastError()[0]) == 0
        np.testing.assert_array_equal(session.infer({"x": x + 1}, ["y"])["y"], x + 1)
    finally:
        session.close()


def test_context_that_cannot_be_captured_runs_without_graph(cuda):
    session, _, notes = make_session(cuda, graph=True)
    session.capturable = lambda context, stream: False
    try:
        x = np.arange(4, dtype=np.float32)
        np.testing.assert_array_equal(session.infer({"x": x}, ["y"])["y"], x)
        assert not session.cuda_graph and "cannot be captured" in notes[0]
    finally:
        session.close()


@pytest.mark.parametrize("transfers", [True, False])
@pytest.mark.parametrize("spin_wait", [True, False])
@pytest.mark.parametrize("graph", [True, False])
def test_launcher_traces_two_streams(cuda, transfers, spin_wait, graph):
    from trtimport.runtime.bench import run_benchmark
    from trtimport.runtime.gpu import GpuLauncher

    session, contexts, _ = make_session(cuda, 2, graph=graph)
    x = np.random.default_rng(2).random((256, 256)).astype(np.float32)
    try:
        launcher = GpuLauncher(session, {"x": x}, transfers=transfers, spin_wait=spin_wait)
        # Prepared and captured before the first timed query (nothing lands in the statistics).
        assert all((s.graph_exec is not None) == graph for s in session.slots)
        result = run_benchmark(
            launcher, runner="stand-in", warmup_ms=0, iterations=40, duration_s=0
        )
        launcher.close()
        assert result.queries == 40
        for t in result.traces:
            assert t.start_enq <= t.end_enq and t.start_compute <= t.end_compute
            assert t.compute_ms > 0
            if transfers:
                assert t.end_h2d <= t.start_compute + 1e-3 and t.end_compute <= t.start_d2h + 1e-3
            else:
                assert t.h2d_ms is None and t.d2h_ms is None
        if transfers:
            for slot in session.slots:
                np.testing.assert_array_equal(
                    slot.buffers["y"].view[: x.nbytes].view(np.float32), x.reshape(-1)
                )
        assert sum(c.executions for c in contexts) == (4 if graph else 40)
    finally:
        session.close()


def test_two_queries_in_flight_per_context(cuda):
    from trtimport.runtime.gpu import GpuLauncher

    session, _, _ = make_session(cuda, 1, scratch=64 * MIB)
    x = np.zeros(16 * MIB // 4, np.float32)
    try:
        launcher = GpuLauncher(session, {"x": x})
        launcher.launch()
        launcher.launch()
        assert all(p is not None for p in session.slots[0].pending)  # none collected yet
        launcher.launch()  # reuses the first entry: collects its query first
        assert len(launcher.done) == 1
        assert len(launcher.collect()) == 3
        launcher.close()
    finally:
        session.close()


def test_shared_scratch_contexts_never_run_at_once(cuda):
    from trtimport.runtime.bench import run_benchmark
    from trtimport.runtime.gpu import GpuLauncher

    session, contexts, _ = make_session(cuda, 3, scratch=8 * MIB, shared=True)
    x = np.random.default_rng(3).random(MIB).astype(np.float32)
    try:
        assert len(session.scratch.blocks) == 1
        assert len({c.scratch for c in contexts}) == 1
        launcher = GpuLauncher(session, {"x": x}, transfers=True)
        result = run_benchmark(
            launcher, runner="stand-in", warmup_ms=0, iterations=30, duration_s=0
        )
        launcher.close()
        computes = sorted((t.start_compute, t.end_compute) for t in result.traces)
        for (_, end), (start, _) in itertools.pairwise(computes):
            assert start >= end - 1e-3
        for slot in session.slots:
            np.testing.assert_array_equal(slot.buffers["y"].view[: x.nbytes].view(np.float32), x)
        assert session.scratch.as_dict(3) == {
            "managed_by": "trtimport",
            "shared": True,
            "bytes_each": 8 * MIB,
            "total_bytes": 8 * MIB,
        }
    finally:
        session.close()
    separate, contexts, _ = make_session(cuda, 3, scratch=MIB)
    try:
        assert len({c.scratch for c in contexts}) == 3
        assert separate.scratch.as_dict(3)["total_bytes"] == 3 * MIB
    finally:
        separate.close()


def test_failed_slot_releases_what_it_created(cuda):
    from trtimport.errors import InferenceError
    from trtimport.runtime.cuda_api import Cuda
    from trtimport.runtime.gpu import Slot

    class CountingRuntime:
        """The real CUDA runtime; the third stream creation reports an error."""

        def __init__(self, rt):
            self.rt, self.created, self.destroyed = rt, [], []

        def __getattr__(self, name):
            return getattr(self.rt, name)

        def cudaStreamCreateWithFlags(self, flags):
            if len(self.created) == 2:
                return (self.rt.cudaError_t.cudaErrorMemoryAllocation, None)
            err, stream = self.rt.cudaStreamCreateWithFlags(flags)
            self.created.append(int(stream))
            return err, stream

        def cudaStreamDestroy(self, stream):
            self.destroyed.append(int(stream))
            return self.rt.cudaStreamDestroy(stream)

    counting = Cuda()
    counting.rt = CountingRuntime(cuda.rt)
    with pytest.raises(InferenceError, match="output stream"):
        Slot(counting, context=None)
    assert counting.rt.created and sorted(counting.rt.destroyed) == sorted(counting.rt.created)


def test_stream_ordered_pool(cuda):
    from trtimport.runtime.cuda_api import StreamOrderedPool

    rt = cuda.rt
    pool = StreamOrderedPool(cuda)
    stream = cuda(rt.cudaStreamCreateWithFlags(rt.cudaStreamNonBlocking), "stream")
    try:
        a = pool.allocate(3 * MIB, int(stream))
        b = pool.allocate(1000, int(stream))
        assert a % 256 == 0 and b % 256 == 0 and pool.allocate(0) == 0
        cuda(rt.cudaMemsetAsync(a, 7, 3 * MIB, stream), "memset")
        host = np.empty(3 * MIB, np.uint8)
        d2h = rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        cuda(rt.cudaMemcpyAsync(host.ctypes.data, a, 3 * MIB, d2h, stream), "D2H")
        cuda(rt.cudaStreamSynchronize(stream), "sync")
        assert (host == 7).all()
        assert pool.stats() == {
            "allocations": 2,
            "peak_bytes": 3 * MIB + 1000,
            "live_bytes": 3 * MIB + 1000,
        }
        assert pool.free(a, int(stream)) and pool.free(b, int(stream)) and not pool.free(a)
        cuda(rt.cudaStreamSynchronize(stream), "sync")
        assert pool.stats()["live_bytes"] == 0
    finally:
        cuda(rt.cudaStreamDestroy(stream), "stream")


def test_driver_probe_matches_the_cuda_runtime(cuda):
    rt = cuda.rt
    gpus, problem = probe_gpus()
    assert problem is None
    assert len(gpus) == cuda(rt.cudaGetDeviceCount(), "cudaGetDeviceCount")
    for gpu in gpus:
        props = cuda(rt.cudaGetDeviceProperties(gpu.index), "cudaGetDeviceProperties")
        name = props.name.decode() if isinstance(props.name, bytes) else str(props.name)
        assert gpu.name == name.rstrip("\x00")
        assert gpu.compute_capability == (props.major, props.minor)
        assert gpu.memory_bytes == props.totalGlobalMem
