"""Every TensorRT and cuda-python name the GPU code calls exists in the installed modules.

The GPU code cannot run engines here; this catches renamed or missing API members without a GPU.
Names every backend has are checked as they are; names that differ between TensorRT 10, 11 and
TensorRT-RTX are reached only through ``Backend.has`` (core/backend.py RUNTIME_FEATURES), whose
table is checked against the installed module and against docs/runtime.md.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from trtimport.core.backend import RUNTIME_FEATURES, get_backend

DOCS = Path(__file__).resolve().parents[2] / "docs"

#: Called unconditionally by the runner, refit and ``info ENGINE``: every backend must have them.
TRT_MEMBERS = {
    "Runtime": ["deserialize_cuda_engine"],
    "ICudaEngine": [
        "num_io_tensors",
        "num_optimization_profiles",
        "get_tensor_name",
        "get_tensor_mode",
        "get_tensor_dtype",
        "get_tensor_shape",
        "get_tensor_location",
        "get_tensor_profile_shape",
        "get_tensor_profile_values",
        "create_execution_context",
        "streamable_weights_size",
        "refittable",
        "serialize",
        "create_serialization_config",
        "serialize_with_config",
    ],
    "IExecutionContext": [
        "set_input_shape",
        "get_tensor_shape",
        "set_tensor_address",
        "set_optimization_profile_async",
        "execute_async_v3",
    ],
    "ISerializationConfig": ["set_flag"],
    "Refitter": [
        "get_all_weights",
        "get_missing_weights",
        "set_named_weights",
        "refit_cuda_engine",
    ],
    "OnnxParserRefitter": ["refit_from_file", "num_errors", "get_error"],
    "TensorIOMode": ["INPUT"],
    "TensorLocation": ["HOST"],
}

#: Used only when the feature that needs them is present (checked with the feature).
FEATURE_COMPANIONS = {
    "engine_stat": [("EngineStat", "TOTAL_WEIGHTS_SIZE")],
    "runtime_config": [("IRuntimeConfig", "set_execution_context_allocation_strategy")],
    "runtime_cache": [
        ("IRuntimeConfig", "set_runtime_cache"),
        ("IRuntimeCache", "serialize"),
        ("IRuntimeCache", "deserialize"),
    ],
    "builtin_cuda_graphs": [("IRuntimeConfig", "cuda_graph_strategy")],
}

CUDART = [
    "cudaFree",
    "cudaMalloc",
    "cudaMallocHost",
    "cudaFreeHost",
    "cudaMemcpyAsync",
    "cudaStreamCreateWithFlags",
    "cudaStreamNonBlocking",
    "cudaStreamSynchronize",
    "cudaStreamWaitEvent",
    "cudaStreamDestroy",
    "cudaEventCreate",
    "cudaEventCreateWithFlags",
    "cudaEventDefault",
    "cudaEventBlockingSync",
    "cudaEventRecord",
    "cudaEventQuery",
    "cudaEventSynchronize",
    "cudaEventElapsedTime",
    "cudaEventDestroy",
    "cudaStreamBeginCapture",
    "cudaStreamEndCapture",
    "cudaGraphInstantiate",
    "cudaGraphLaunch",
    "cudaGraphDestroy",
    "cudaGraphExecDestroy",
    "cudaGetLastError",
    "cudaGetErrorString",
    "cudaDeviceGetDefaultMemPool",
    "cudaMallocFromPoolAsync",
    "cudaFreeAsync",
]


def backend_key() -> str:
    """The RUNTIME_FEATURES column of the installed backend."""
    be = get_backend()
    if be.is_rtx:
        return "tensorrt_rtx"
    return f"tensorrt{be.version.split('.')[0]}"


def test_shared_members_exist():
    be = get_backend()
    missing = [
        f"{cls}.{member}"
        for cls, members in TRT_MEMBERS.items()
        for member in members
        if not hasattr(getattr(be.trt, cls, None), member)
    ]
    assert missing == []
    assert be.trt.nptype(be.trt.DataType.FLOAT).__name__ == "float32"


@pytest.mark.parametrize("feature", sorted(RUNTIME_FEATURES))
def test_feature_table_matches_the_installed_backend(feature):
    be = get_backend()
    _, _, backends = RUNTIME_FEATURES[feature]
    assert be.has(feature) == (backend_key() in backends)
    if be.has(feature):
        missing = [
            f"{cls}.{member}"
            for cls, member in FEATURE_COMPANIONS.get(feature, [])
            if not hasattr(getattr(be.trt, cls, None), member)
        ]
        assert missing == []


def test_docs_table_is_the_feature_table():
    text = (DOCS / "runtime.md").read_text()
    rows = {}
    for line in text.splitlines():
        match = re.match(r"\| `(\w+)` \| `(\w+)\.(\w+)` \| (.*?) \| (.*?) \| (.*?) \|", line)
        if match:
            marks = [m.strip() == "yes" for m in match.group(4, 5, 6)]
            rows[match.group(1)] = (match.group(2), match.group(3), marks)
    expected = {
        name: (owner, member, [b in backends for b in ("tensorrt10", "tensorrt11", "tensorrt_rtx")])
        for name, (owner, member, backends) in RUNTIME_FEATURES.items()
    }
    assert rows == expected


def test_cuda_python_members_exist():
    pytest.importorskip("cuda.bindings.runtime")
    from trtimport.runtime.cuda_api import cudart

    rt = cudart()
    assert [name for name in CUDART if not hasattr(rt, name)] == []
    assert hasattr(rt.cudaMemcpyKind, "cudaMemcpyHostToDevice")
    assert hasattr(rt.cudaStreamCaptureMode, "cudaStreamCaptureModeThreadLocal")
