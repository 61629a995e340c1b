"""A TensorRT logger that keeps what TensorRT says, so errors can name their cause."""

from __future__ import annotations

import sys
from typing import Any

from trtimport.core.backend import Backend


def make_logger(backend: Backend, verbosity: int = 0) -> Any:
    """A ``trt.ILogger`` that records errors; ``-v`` prints warnings, more ``-v`` prints more."""
    trt = backend.trt
    severity = trt.ILogger.Severity

    class CollectingLogger(trt.ILogger):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: list[str] = []
            self.warnings: list[str] = []

        def log(self, level: Any, msg: str) -> None:
            if level in (severity.INTERNAL_ERROR, severity.ERROR):
                self.errors.append(msg)
            elif level == severity.WARNING:
                self.warnings.append(msg)
            shown = {0: (), 1: (severity.WARNING,), 2: (severity.WARNING, severity.INFO)}
            extra = shown.get(verbosity, (severity.WARNING, severity.INFO, severity.VERBOSE))
            if level in extra:
                print(f"[{backend.name}] {msg}", file=sys.stderr)

    return CollectingLogger()
