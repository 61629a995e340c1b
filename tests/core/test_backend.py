"""Backend resolution and capability questions, on the installed tensorrt_rtx."""

from __future__ import annotations

import pytest

from trtimport.core.backend import get_backend, normalize_target
from trtimport.errors import UsageError


@pytest.mark.parametrize("spelling", ["sm86", "SM86", "sm_86", "8.6", "86"])
def test_normalize_target(spelling: str) -> None:
    assert normalize_target(spelling) == "sm86"


def test_invalid_target() -> None:
    with pytest.raises(UsageError, match="invalid target 'ampere'"):
        normalize_target("ampere")


def test_rtx_capabilities() -> None:
    pytest.importorskip("tensorrt_rtx")
    backend = get_backend("rtx")
    assert backend.name == "tensorrt_rtx" and backend.is_rtx
    assert backend.strongly_typed_only and not backend.has_precision_flags
    assert backend.network_flags == 0  # strongly typed already; no flag needed
    assert backend.supports_targets and backend.cache_kind == "runtime"
    assert backend.compute_capability_enum("8.9") == backend.trt.ComputeCapability.SM89
    with pytest.raises(UsageError, match=r"unknown target 'sm90'.*sm86"):
        backend.compute_capability_enum("sm90")


def test_unknown_backend_name() -> None:
    with pytest.raises(UsageError, match="unknown TensorRT backend 'onnxruntime'"):
        get_backend("onnxruntime")
