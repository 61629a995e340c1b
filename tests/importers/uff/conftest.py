"""TensorFlow for the UFF tests, imported once (the shared files come from tests/conftest.py)."""

from __future__ import annotations

import os
from typing import Any

import pytest


@pytest.fixture(scope="session")
def tf() -> Any:
    """TensorFlow with its logging turned down (skips the test without it)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    module = pytest.importorskip("tensorflow")
    module.get_logger().setLevel("ERROR")
    return module
