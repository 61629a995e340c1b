"""A stand-in for a TensorRT execution context, for testing trtimport's own GPU mechanics.

NOT TensorRT, and never used to claim anything about TensorRT: the GPU these tests run on has no
TensorRT that can run engines. :class:`CopyingStandInContext` answers the execution-context calls
:class:`~trtimport.runtime.gpu.EngineSession` makes, and its ``execute_async_v3`` queues
real GPU work on the stream it is given: it copies input ``x`` into the scratch memory it was
handed and from there to output ``y``. So a wrong address, size, stream, event order, graph or
scratch binding in trtimport's code shows up as wrong numbers or CUDA errors on a real GPU.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from trtimport.runtime.cuda_api import Cuda
from trtimport.runtime.gpu import IoTensor


def standin_io(dtype: str = "float32", *, shape_input: bool = False) -> list[IoTensor]:
    """I/O of the stand-in: input ``x``, output ``y`` (and shape-tensor input ``s``)."""
    io = [IoTensor("x", True, np.dtype(dtype)), IoTensor("y", False, np.dtype(dtype))]
    if shape_input:
        io.append(IoTensor("s", True, np.dtype("int64"), on_host=True))
    return io


class CopyingStandInContext:
    """Execution-context calls answered by copying ``x`` to ``y`` through scratch, on the GPU.

    ``profiles``: per profile, the (min, max) shape of ``x`` that ``set_input_shape`` accepts
    while that profile is selected (None: any shape). ``invalidate_capture``: during a stream
    capture, do what a graph cannot hold (synchronize the capturing stream), so the capture is
    invalidated.
    With a shape-tensor input ``s``, the output's shape is ``s``'s values, read from the host
    address bound for ``s`` when the output shape is asked for.
    """

    def __init__(
        self,
        cuda: Cuda,
        itemsize: int = 4,
        *,
        profiles: list[tuple[tuple[int, ...], tuple[int, ...]]] | None = None,
        shape_input: bool = False,
        invalidate_capture: bool = False,
    ) -> None:
        self.cuda = cuda
        self.itemsize = itemsize
        self.profiles = profiles
        self.shape_input = shape_input
        self.invalidate_capture = invalidate_capture
        self.profile = 0
        self.profile_calls: list[tuple[int, int]] = []
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.addresses: dict[str, int] = {}
        self.scratch: tuple[int, int] = (0, 0)
        self.executions = 0

    def set_optimization_profile_async(self, index: int, stream: int) -> bool:
        """Select a profile (recorded, so tests see which one was asked for)."""
        self.profile_calls.append((index, stream))
        self.profile = index
        return True

    def set_input_shape(self, name: str, shape: tuple[int, ...]) -> bool:
        """Accept ``x`` shapes inside the selected profile (any shape without profiles)."""
        if name == "x" and self.profiles is not None:
            lo, hi = self.profiles[self.profile]
            if len(shape) != len(lo) or any(
                not a <= d <= b for d, a, b in zip(shape, lo, hi, strict=True)
            ):
                return False
        self.shapes[name] = tuple(shape)
        return True

    def set_tensor_address(self, name: str, address: int) -> bool:
        """Remember where a tensor lives."""
        self.addresses[name] = address
        return True

    def set_device_memory(self, memory: int, size: int) -> None:
        """The scratch memory the copies go through."""
        self.scratch = (memory, size)

    def _shape_values(self) -> tuple[int, ...]:
        count = self.shapes["s"][0]
        address = self.addresses.get("s")
        if not address:
            return (-1,) * count
        values = (ctypes.c_int64 * count).from_address(address)
        return tuple(int(v) for v in values)

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        """``y`` has ``s``'s values as its shape, else ``x``'s shape."""
        if name == "y":
            return self._shape_values() if self.shape_input else self.shapes["x"]
        return self.shapes[name]

    def execute_async_v3(self, stream: int) -> bool:
        """Queue x -> scratch -> y copies on ``stream`` (real GPU work)."""
        rt = self.cuda.rt
        self.executions += 1
        nbytes = int(np.prod(self.shapes["x"])) * self.itemsize
        scratch, size = self.scratch
        if nbytes > size:
            return False
        d2d = rt.cudaMemcpyKind.cudaMemcpyDeviceToDevice
        err, status = rt.cudaStreamIsCapturing(stream)
        capturing = status == rt.cudaStreamCaptureStatus.cudaStreamCaptureStatusActive
        results: list[Any] = [rt.cudaMemcpyAsync(scratch, self.addresses["x"], nbytes, d2d, stream)]
        if capturing and self.invalidate_capture:
            rt.cudaStreamSynchronize(stream)  # not allowed while capturing: invalidates it
            return True
        results.append(rt.cudaMemcpyAsync(self.addresses["y"], scratch, nbytes, d2d, stream))
        return all(int(r[0]) == 0 for r in results) and int(err) == 0
