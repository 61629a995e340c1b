"""The peak of Python's own allocations while a piece of work runs (tracemalloc)."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable


def python_peak(run: Callable[[], object]) -> int:
    """Bytes at the peak of Python allocations during a second call of ``run``; the first
    call is not measured (imports and first-use caches are not what is measured)."""
    run()
    tracemalloc.start()
    try:
        run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak
