"""ONNX's own backend node test cases, generated from the installed ``onnx`` package.

Shared by the tests that import/build every case (foundation) and round-trip them through the
network exporter. Collecting takes ~12 s, so it is cached per process.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx


@dataclass(frozen=True)
class NodeCase:
    """One backend node case: its model and its first data set."""

    name: str
    model: onnx.ModelProto
    inputs: tuple[np.ndarray, ...]
    outputs: tuple[np.ndarray, ...]
    rtol: float
    atol: float

    def save(self, folder: Path) -> Path:
        """Write the model to ``folder/NAME.onnx``; returns the path."""
        path = folder / f"{self.name}.onnx"
        onnx.save(self.model, str(path))
        return path


@functools.cache
def node_cases() -> tuple[NodeCase, ...]:
    """Every node case of the installed onnx package, sorted by name."""
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = collect_testcases()
    out = []
    for case in cases:
        if case.model is None:
            continue
        inputs, outputs = case.data_sets[0] if case.data_sets else ([], [])
        out.append(
            NodeCase(case.name, case.model, tuple(inputs), tuple(outputs), case.rtol, case.atol)
        )
    return tuple(sorted(out, key=lambda c: c.name))
