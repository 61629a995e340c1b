"""Every TensorRT and cuda-python name the GPU code calls exists in the installed modules.

The GPU code cannot run here; this catches renamed or missing API members without a GPU.
"""

from __future__ import annotations

import pytest

from trtimport.core.backend import get_backend

TRT_MEMBERS = {
    "Runtime": ["deserialize_cuda_engine"],
    "ICudaEngine": [
        "num_io_tensors",
        "get_tensor_name",
        "get_tensor_mode",
        "get_tensor_dtype",
        "get_tensor_shape",
        "get_tensor_profile_shape",
        "create_execution_context",
        "refittable",
        "serialize",
    ],
    "IExecutionContext": [
        "set_input_shape",
        "get_tensor_shape",
        "set_tensor_address",
        "execute_async_v3",
        "is_stream_capturable",
    ],
    "Refitter": [
        "get_all_weights",
        "get_missing_weights",
        "set_named_weights",
        "refit_cuda_engine",
    ],
    "OnnxParserRefitter": ["refit_from_file", "num_errors", "get_error"],
    "TensorIOMode": ["INPUT"],
}

RTX_MEMBERS = {
    "ICudaEngine": ["create_runtime_config"],
    "IRuntimeConfig": ["create_runtime_cache", "set_runtime_cache"],
    "IRuntimeCache": ["serialize", "deserialize"],
}

CUDART = [
    "cudaFree",
    "cudaMalloc",
    "cudaMallocHost",
    "cudaFreeHost",
    "cudaStreamCreateWithFlags",
    "cudaStreamNonBlocking",
    "cudaStreamSynchronize",
    "cudaStreamDestroy",
    "cudaEventCreate",
    "cudaEventRecord",
    "cudaEventSynchronize",
    "cudaEventElapsedTime",
    "cudaEventDestroy",
    "cudaMemcpyAsync",
    "cudaStreamBeginCapture",
    "cudaStreamEndCapture",
    "cudaGraphInstantiate",
    "cudaGraphLaunch",
    "cudaGraphDestroy",
    "cudaGraphExecDestroy",
    "cudaGetErrorString",
]


def test_tensorrt_members_exist():
    be = get_backend()
    wanted = dict(TRT_MEMBERS)
    if be.is_rtx:
        wanted |= {k: wanted.get(k, []) + v for k, v in RTX_MEMBERS.items()}
    missing = [
        f"{cls}.{member}"
        for cls, members in wanted.items()
        for member in members
        if not hasattr(getattr(be.trt, cls, None), member)
    ]
    assert missing == []
    assert be.trt.nptype(be.trt.DataType.FLOAT).__name__ == "float32"


def test_cuda_python_members_exist():
    pytest.importorskip("cuda.bindings.runtime")
    from trtimport.runtime.tensorrt import _cudart

    rt = _cudart()
    assert [name for name in CUDART if not hasattr(rt, name)] == []
    assert hasattr(rt.cudaMemcpyKind, "cudaMemcpyHostToDevice")
    assert hasattr(rt.cudaStreamCaptureMode, "cudaStreamCaptureModeThreadLocal")
