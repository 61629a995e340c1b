"""Session-scoped TensorFlow models, each saved once in every format."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from .tf_models import SavedFiles, save_all


@pytest.fixture(scope="session")
def tf_saved(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], SavedFiles]:
    """``tf_saved(name)``: the named model saved in every format (built on first use)."""
    pytest.importorskip("tensorflow")
    pytest.importorskip("tf2onnx")
    root = tmp_path_factory.mktemp("tf_models")
    cache: dict[str, SavedFiles] = {}

    def get(name: str) -> SavedFiles:
        if name not in cache:
            cache[name] = save_all(name, root / name)
        return cache[name]

    return get


@pytest.fixture(scope="session")
def tf_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session folder for models built by single tests."""
    return tmp_path_factory.mktemp("tf_extra")
