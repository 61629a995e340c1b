"""A device-memory hook for TensorRT's runtime: an IGpuAsyncAllocator over a stream-ordered pool.

``Runtime.gpu_allocator`` takes an object TensorRT calls for every device allocation it makes
itself (engine weights, context memory it owns). :func:`make_gpu_allocator` builds one, written
with cuda-python, that serves them from :class:`~trtimport.runtime.gpu.StreamOrderedPool`.
The TensorRT class it derives from comes from the installed backend, so the subclass is made
when it is asked for.
"""

from __future__ import annotations

from typing import Any

from trtimport.core.backend import Backend
from trtimport.runtime.cuda_api import StreamOrderedPool

#: AllocatorFlag values are small (RESIZABLE = 1); stream handles above 2 are real streams.
_LARGEST_SPECIAL_STREAM = 2


def stream_argument(third: int, fourth: int) -> int:
    """The stream among ``allocate_async``'s last two arguments.

    TensorRT documents ``allocate_async(size, alignment, flags, stream)``, but the Python
    trampoline of IGpuAsyncAllocator in TensorRT 10's bindings (python/src/infer/pyCore.cpp)
    passes ``(size, alignment, stream, flags)``. Flags are 0 or 1 and streams other than the
    legacy/per-thread defaults (0, 1, 2) are pointers, so the larger value is the stream; when
    both are small the work is on a default stream, which the pool treats as stream 0.
    """
    stream = max(int(third), int(fourth))
    return stream if stream > _LARGEST_SPECIAL_STREAM else 0


def make_gpu_allocator(backend: Backend, pool: StreamOrderedPool) -> Any:
    """An instance of a ``backend.trt.IGpuAsyncAllocator`` subclass that allocates from ``pool``."""
    base = backend.trt.IGpuAsyncAllocator

    class PoolAllocator(base):  # type: ignore[misc, valid-type]
        """TensorRT's device allocations, served by a stream-ordered pool."""

        def __init__(self) -> None:
            base.__init__(self)
            self.pool = pool

        def allocate_async(self, size: int, alignment: int, third: int, fourth: int) -> int:
            """Device memory for TensorRT (the pool's blocks are 256-byte aligned or better)."""
            return self.pool.allocate(int(size), stream_argument(third, fourth))

        def deallocate_async(self, memory: int, stream: int) -> bool:
            """Give memory back to the pool in ``stream``'s order."""
            return self.pool.free(int(memory), int(stream))

        def allocate(self, size: int, alignment: int, flags: int) -> int:
            """The synchronous form (older callers): allocate with no stream."""
            return self.pool.allocate(int(size), 0)

        def deallocate(self, memory: int) -> bool:
            """The synchronous form of :meth:`deallocate_async`."""
            return self.pool.free(int(memory), 0)

        def reallocate(self, address: int, alignment: int, new_size: int) -> int:
            """Growing in place is not supported: 0 tells TensorRT to allocate anew."""
            return 0

    return PoolAllocator()
