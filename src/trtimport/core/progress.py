"""How library code reports long work. The library only calls these methods; ``cli/`` draws.

A long job (a TensorRT build, a tf2onnx conversion) is a *phase*, possibly nested, with a
number of steps (0 when unknown). :meth:`Progress.cancellable` marks the part that Ctrl-C may
cancel cleanly; :meth:`Progress.cancelled` is asked between steps.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


class Progress:
    """Receives progress reports. This base ignores them and never cancels."""

    def phase_start(self, name: str, parent: str | None = None, steps: int = 0) -> None:
        """A phase began; ``parent`` is the enclosing phase's name, ``steps`` 0 if unknown."""

    def step(self, name: str, done: int) -> None:
        """``done`` steps of phase ``name`` are complete."""

    def phase_finish(self, name: str) -> None:
        """Phase ``name`` ended."""

    def cancelled(self) -> bool:
        """True once the user asked to stop (the work in progress then ends early)."""
        return False

    @contextlib.contextmanager
    def cancellable(self) -> Iterator[None]:
        """Wraps work that stops cleanly when :meth:`cancelled` turns true."""
        yield

    @contextlib.contextmanager
    def phase(self, name: str, steps: int = 0) -> Iterator[None]:
        """A top-level phase around a ``with`` block."""
        self.phase_start(name, None, steps)
        try:
            yield
        finally:
            self.phase_finish(name)


class CancelOnly(Progress):
    """``inner``'s cancelling without its reports: work that should show nothing (a build
    with ``BuildOptions.progress=False``, ``-q``) still stops cleanly when the user cancels,
    instead of an interrupt raised inside TensorRT's callbacks, which TensorRT turns into a
    failed build."""

    def __init__(self, inner: Progress) -> None:
        self.inner = inner

    def cancelled(self) -> bool:
        """What ``inner`` says."""
        return self.inner.cancelled()

    @contextlib.contextmanager
    def cancellable(self) -> Iterator[None]:
        """``inner``'s cancellable block."""
        with self.inner.cancellable():
            yield
