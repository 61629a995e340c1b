"""CUDA runtime pieces of the TensorRT runner: cuda-python's API with errors checked, pinned
host and device buffers, and the stream-ordered memory pool TensorRT's allocator draws from.

Nothing here imports TensorRT; :mod:`trtimport.runtime.gpu` builds the execution side on it.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from trtimport.errors import InferenceError, MissingDependencyError

#: TensorRT asks for 256-byte aligned device memory; cudaMalloc gives at least that.
ALIGNMENT = 256

#: cudaErrorNotReady: an event or stream has work left (cudaEventQuery while spin-waiting).
NOT_READY = 600


def cudart() -> Any:
    """cuda-python's runtime module (``cuda.bindings.runtime``, or ``cuda.cudart`` before 12.6)."""
    try:
        from cuda.bindings import runtime
    except ImportError:
        try:
            from cuda import cudart as runtime  # cuda-python before 12.6
        except ImportError as err:
            raise MissingDependencyError(
                "Running TensorRT engines", "runtime", module="cuda-python"
            ) from err
    return runtime


class Cuda:
    """cuda-python's runtime API with errors turned into :class:`InferenceError`."""

    def __init__(self) -> None:
        self.rt = cudart()

    def __call__(self, result: Any, what: str) -> Any:
        """Unpack ``(err, *values)``; raise on anything but cudaSuccess."""
        err, *values = result if isinstance(result, tuple) else (result,)
        if int(err) != 0:
            raise InferenceError(f"CUDA call {what} failed: {self.error_text(err)} ({err})")
        if not values:
            return None
        return values[0] if len(values) == 1 else tuple(values)

    def error_text(self, err: Any) -> str:
        """The CUDA runtime's description of an error code."""
        _, text = self.rt.cudaGetErrorString(err)
        return text.decode() if isinstance(text, bytes) else str(text)


def host_view(address: int, nbytes: int) -> np.ndarray:
    """A uint8 numpy view of host memory at ``address``."""
    return np.frombuffer(memoryview((ctypes.c_uint8 * nbytes).from_address(address)), np.uint8)


class Buffer:
    """Pinned host memory and (unless ``host_only``) its device twin, grown on demand.

    Shape-tensor inputs live in host memory (TensorRT reads their values on the host when it
    computes output shapes), so their buffer is ``host_only`` and bound by its host address.
    """

    def __init__(self, cuda: Cuda, *, host_only: bool = False) -> None:
        self.cuda = cuda
        self.host_only = host_only
        self.capacity = 0
        self.device = 0
        self.host = 0
        self.view = np.empty(0, np.uint8)

    @property
    def address(self) -> int:
        """The address TensorRT is given: host memory for host tensors, else device memory."""
        return self.host if self.host_only else self.device

    def ensure(self, nbytes: int) -> None:
        """Make room for ``nbytes`` (reallocating if the buffers are too small)."""
        nbytes = max(nbytes, 1)
        if nbytes <= self.capacity:
            return
        self.free()
        rt = self.cuda.rt
        try:
            if not self.host_only:
                self.device = self.cuda(rt.cudaMalloc(nbytes), "cudaMalloc")
            self.host = self.cuda(rt.cudaMallocHost(nbytes), "cudaMallocHost")
        except BaseException:
            self.free()
            raise
        self.view = host_view(self.host, nbytes)
        self.capacity = nbytes

    def free(self) -> None:
        """Release both allocations (safe to call twice)."""
        rt = self.cuda.rt
        device, host = self.device, self.host
        self.device = self.host = self.capacity = 0
        self.view = np.empty(0, np.uint8)
        if device:
            self.cuda(rt.cudaFree(device), "cudaFree")
        if host:
            self.cuda(rt.cudaFreeHost(host), "cudaFreeHost")


class StreamOrderedPool:
    """Device memory from the CUDA device's stream-ordered pool (cudaMallocFromPoolAsync).

    The allocations TensorRT asks its runtime's GPU allocator for come from here (see
    :func:`trtimport.runtime.allocator.make_gpu_allocator`); freed blocks go back to the pool
    in stream order and are reused without a cudaMalloc. It counts what it hands out.
    """

    def __init__(self, cuda: Cuda, device: int = 0) -> None:
        self.cuda = cuda
        self.pool = cuda(cuda.rt.cudaDeviceGetDefaultMemPool(device), "default memory pool")
        self.live: dict[int, int] = {}
        self.allocations = 0
        self.peak_bytes = 0

    @property
    def live_bytes(self) -> int:
        """Bytes handed out and not yet freed."""
        return sum(self.live.values())

    def allocate(self, size: int, stream: int = 0) -> int:
        """``size`` bytes ordered on ``stream`` (0 for none); 0 for a zero-byte request."""
        if size <= 0:
            return 0
        rt = self.cuda.rt
        ptr = int(self.cuda(rt.cudaMallocFromPoolAsync(size, self.pool, stream), "pool alloc"))
        self.live[ptr] = size
        self.allocations += 1
        self.peak_bytes = max(self.peak_bytes, self.live_bytes)
        return ptr

    def free(self, ptr: int, stream: int = 0) -> bool:
        """Return ``ptr`` to the pool in ``stream``'s order; False if it was not from here."""
        if ptr not in self.live:
            return False
        self.cuda(self.cuda.rt.cudaFreeAsync(ptr, stream), "cudaFreeAsync")
        del self.live[ptr]
        return True

    def stats(self) -> dict[str, int]:
        """What the pool handed out: allocations, peak and live bytes."""
        return {
            "allocations": self.allocations,
            "peak_bytes": self.peak_bytes,
            "live_bytes": self.live_bytes,
        }
