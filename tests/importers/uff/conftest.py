"""Shared fixtures of the UFF tests: the shared real files and TensorFlow (imported once)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]
SHARED_UFF = REPO.parent / "shared" / "models" / "uff"


@pytest.fixture(scope="session")
def tf() -> Any:
    """TensorFlow with its logging turned down (skips the test without it)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    module = pytest.importorskip("tensorflow")
    module.get_logger().setLevel("ERROR")
    return module


@pytest.fixture(scope="session")
def shared_uff() -> Path:
    """The folder of real UFF files (skips the test when the checkout has none beside it)."""
    if not SHARED_UFF.is_dir():
        pytest.skip(f"no shared UFF models at {SHARED_UFF}")
    return SHARED_UFF
