"""The CPU-side decisions of the GPU runner: profile choice, scratch plans, trtexec settings,
the allocator's stream argument, and what TensorRT-RTX can run on (no GPU needed)."""

from __future__ import annotations

import pytest

from trtimport.core import backend as backend_module
from trtimport.core.backend import GpuInfo, get_backend
from trtimport.errors import UsageError
from trtimport.runtime import TRTEXEC_DEFAULTS
from trtimport.runtime.allocator import stream_argument
from trtimport.runtime.bench import trtexec_settings
from trtimport.runtime.gpu import ScratchPlan, choose_profile

PROFILES = [
    {"x": ((1, 3), (4, 3)), "s": ((2,), (2,))},
    {"x": ((5, 3), (64, 3)), "s": ((2,), (9,))},
]


def test_choose_profile_prefers_the_current_one_and_finds_later_ones():
    assert choose_profile(PROFILES, {"x": (2, 3), "s": (2,)}) == 0
    assert choose_profile(PROFILES, {"x": (8, 3), "s": (2,)}) == 1
    both = [PROFILES[1], {"x": ((1, 3), (64, 3)), "s": ((2,), (9,))}]
    assert choose_profile(both, {"x": (8, 3), "s": (4,)}, current=1) == 1
    assert choose_profile(PROFILES, {"x": (8, 3), "s": (1,)}) is None  # value out of range
    assert choose_profile(PROFILES, {"x": (8, 4), "s": (2,)}) is None
    assert choose_profile(PROFILES, {"x": (8,), "s": (2,)}) is None  # rank differs
    assert choose_profile([], {"x": (1,)}) == 0


def test_scratch_plans():
    assert ScratchPlan(None).as_dict(4) == {
        "managed_by": "tensorrt",
        "shared": False,
        "bytes_each": None,
    }
    assert ScratchPlan(1000, shared=True).as_dict(4)["total_bytes"] == 1000
    assert ScratchPlan(1000).as_dict(4)["total_bytes"] == 4000


def test_trtexec_settings():
    assert trtexec_settings(11) == {"data_transfers": False, "cuda_graph": True, "spin_wait": True}
    assert trtexec_settings(10) == {"data_transfers": True, "cuda_graph": False, "spin_wait": False}
    assert trtexec_settings(11, cuda_graph=False, spin_wait=None)["cuda_graph"] is False
    assert trtexec_settings(10, data_transfers=False) == TRTEXEC_DEFAULTS[10] | {
        "data_transfers": False
    }
    with pytest.raises(UsageError, match="--trtexec 9"):
        trtexec_settings(9)
    with pytest.raises(UsageError, match="unknown trtexec setting"):
        trtexec_settings(11, overlap=True)


def test_allocator_stream_argument_in_either_order():
    stream = 0x7F00_1234_5600
    assert stream_argument(1, stream) == stream  # documented order: flags, stream
    assert stream_argument(stream, 0) == stream  # TensorRT 10 trampoline: stream, flags
    assert stream_argument(0, 1) == 0 and stream_argument(1, 0) == 0
    assert stream_argument(0, 0) == 0


@pytest.mark.parametrize(
    ("name", "cc", "runs"),
    [
        ("NVIDIA GeForce RTX 4090", (8, 9), True),
        ("NVIDIA GeForce RTX 5090", (12, 0), True),
        ("NVIDIA RTX A6000", (8, 6), True),
        ("NVIDIA A100-SXM4-80GB", (8, 0), True),
        ("Tesla T4", (7, 5), True),
        ("NVIDIA H200", (9, 0), False),
        ("NVIDIA B200", (10, 0), False),
        ("Tesla V100-SXM2-16GB", (7, 0), False),
        ("Orin", (8, 7), False),
    ],
)
def test_tensorrt_rtx_runs_only_on_its_compute_capabilities(monkeypatch, name, cc, runs):
    be = get_backend()
    if not be.is_rtx:
        pytest.skip("the TensorRT-RTX backend is not the one in use")
    gpu = GpuInfo(0, name, cc, 16 << 30)
    monkeypatch.setattr(backend_module, "probe_gpus", lambda: ((gpu,), None))
    problem = be.gpu_support_problem()
    assert (problem is None) == runs
    if not runs:
        assert f"{name} ({gpu.sm})" in problem and "trtimport[tensorrt]" in problem
        assert "sm75" in problem and "sm121" in problem
