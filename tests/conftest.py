"""Shared fixtures."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_MODELS = REPO.parent / "shared" / "models"


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None):
    """Run ``python -m trtimport ARGS`` in a subprocess; returns CompletedProcess."""
    import os
    import subprocess

    full_env = {**os.environ, **(env or {})}
    # A relative PYTHONPATH (PYTHONPATH=src) would point elsewhere from another cwd.
    full_env["PYTHONPATH"] = os.pathsep.join(
        str(Path(p).resolve()) for p in full_env.get("PYTHONPATH", "").split(os.pathsep) if p
    )
    return subprocess.run(
        [sys.executable, "-m", "trtimport", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture
def cli():
    """The ``run_cli`` helper as a fixture."""
    return run_cli


@pytest.fixture(scope="session")
def shared_caffe() -> Path:
    """../shared/models/caffe (skips if the shared folder is not beside the checkout)."""
    path = SHARED_MODELS / "caffe"
    if not path.is_dir():
        pytest.skip(f"shared Caffe models not found at {path}")
    return path


@pytest.fixture(scope="session")
def shared_uff() -> Path:
    """../shared/models/uff (skips if the shared folder is not beside the checkout)."""
    path = SHARED_MODELS / "uff"
    if not path.is_dir():
        pytest.skip(f"shared UFF models not found at {path}")
    return path
