"""Engines on disk: written atomically, with a JSON sidecar describing how they were made."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from trtimport.core.files import atomic_path
from trtimport.errors import ModelParseError

SIDECAR_SCHEMA = 1


@dataclass(frozen=True)
class TensorInfo:
    """A network input or output: name, shape (-1 for dynamic dims) and dtype."""

    name: str
    shape: tuple[int, ...]
    dtype: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


def sidecar_path(engine: Path) -> Path:
    """``model.engine`` -> ``model.engine.json``."""
    return engine.with_name(engine.name + ".json")


def write_engine(engine: Path, data: Any, sidecar: dict[str, Any]) -> int:
    """Write the engine and its sidecar atomically; returns the engine's size in bytes.

    The sidecar is renamed into place first, then the engine, so an engine file never exists
    without its description. Until then, an existing engine at ``engine`` stays as it was, and a
    failed write leaves no file behind (see :func:`~trtimport.core.files.atomic_path`).
    """
    side = sidecar_path(engine)
    with atomic_path(engine) as tmp_engine:
        with tmp_engine.open("wb") as f:
            f.write(memoryview(data))
        size = os.path.getsize(tmp_engine)
        # No hash of the engine itself: hashing costs as much as writing it (see
        # docs/performance.md); the size ties the sidecar to its engine.
        sidecar = {**sidecar, "engine": {"file": engine.name, "bytes": size}}
        with atomic_path(side) as tmp_side:
            tmp_side.write_text(json.dumps(sidecar, indent=2, default=str) + "\n")
    return size


def recorded_sources(engine: Path) -> dict[str, dict[str, Any]]:
    """Source-file entries (by path) of the sidecar an earlier build left for ``engine``.

    Empty when there is none or it cannot be read: the entries only spare re-hashing files
    that have not changed (:func:`~trtimport.core.files.reusable_digest`).
    """
    try:
        files = read_sidecar(engine)["source"]["files"]
        return {e["path"]: e for e in files if isinstance(e, dict) and isinstance(e["path"], str)}
    except (ModelParseError, OSError, KeyError, TypeError):
        return {}


def read_sidecar(engine: Path) -> dict[str, Any]:
    """The sidecar of an engine written by trtimport."""
    side = sidecar_path(engine)
    try:
        data = json.loads(side.read_text())
    except FileNotFoundError as err:
        raise ModelParseError(
            f"{engine}: no sidecar {side.name} beside the engine; engines built by trtimport "
            "have one. Rebuild the engine with trtimport."
        ) from err
    except json.JSONDecodeError as err:
        raise ModelParseError(f"{side}: not valid JSON ({err}); rebuild the engine") from err
    if not isinstance(data, dict):
        raise ModelParseError(f"{side}: not a trtimport sidecar; rebuild the engine")
    return data


def tensor_infos(items: list[TensorInfo]) -> list[dict[str, Any]]:
    """JSON-friendly list of tensors."""
    return [asdict(t) | {"shape": list(t.shape)} for t in items]
