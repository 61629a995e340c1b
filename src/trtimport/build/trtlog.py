"""A TensorRT logger that keeps what TensorRT says, so errors can name their cause."""

from __future__ import annotations

import sys
from typing import Any

from trtimport.core.backend import Backend

#: How TensorRT-RTX says (at VERBOSE level only) that a portable build leaves out some targets.
TARGETS_LEFT_OUT = "will not be able to run on target(s): "


def make_logger(backend: Backend, verbosity: int = 0) -> Any:
    """A ``trt.ILogger`` that records errors; ``-v`` prints warnings, more ``-v`` prints more."""
    trt = backend.trt
    severity = trt.ILogger.Severity
    errors = {severity.INTERNAL_ERROR, severity.ERROR}
    by_verbosity = [(), (severity.WARNING,), (severity.WARNING, severity.INFO)]
    shown = frozenset(
        by_verbosity[verbosity]
        if verbosity < len(by_verbosity)
        else (severity.WARNING, severity.INFO, severity.VERBOSE)
    )
    # TensorRT calls a Python logger for every message, thousands of VERBOSE ones per build, so
    # those return at once unless they are to be shown.
    quiet = frozenset({severity.VERBOSE, severity.INFO}) - shown

    class CollectingLogger(trt.ILogger):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: list[str] = []
            self.warnings: list[str] = []
            #: TensorRT-RTX's messages about targets a portable build left out.
            self.targets_left_out: list[str] = []

        def log(self, level: Any, msg: str) -> None:
            if TARGETS_LEFT_OUT in msg:
                self.targets_left_out.append(msg)
            if level in quiet:
                return
            if level in errors:
                self.errors.append(msg)
            elif level == severity.WARNING:
                self.warnings.append(msg)
            if level in shown:
                print(f"[{backend.name}] {msg}", file=sys.stderr)

    return CollectingLogger()
