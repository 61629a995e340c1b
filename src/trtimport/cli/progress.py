"""Progress bars on the terminal, and Ctrl-C turned into a clean cancel of a TensorRT build.

The library reports through :class:`trtimport.core.progress.Progress`; this is the CLI's
implementation. Nothing is drawn unless stderr is a terminal (and then rich is imported).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

from trtimport.core.progress import Progress


class TerminalProgress(Progress):
    """Draws phases as rich progress bars (a pulsing bar when the step count is unknown)."""

    def __init__(self, draw: bool = True) -> None:
        self._bar: Any = None
        self._draw = draw and sys.stderr.isatty()
        self._tasks: dict[str, tuple[Any, str | None]] = {}
        self._cancel_requested = False

    def _progress(self) -> Any:
        if self._bar is None:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._bar.start()
        return self._bar

    def phase_start(self, name: str, parent: str | None = None, steps: int = 0) -> None:
        """Add a bar, indented under its parent phase's bar."""
        if not self._draw:
            return
        depth, up = 0, parent
        while up is not None and up in self._tasks:
            depth += 1
            up = self._tasks[up][1]
        task = self._progress().add_task(
            "  " * depth + name, total=max(steps, 1) if steps else None
        )
        self._tasks[name] = (task, parent)

    def step(self, name: str, done: int) -> None:
        """Move the phase's bar."""
        if name in self._tasks:
            self._progress().update(self._tasks[name][0], completed=done)

    def phase_finish(self, name: str) -> None:
        """Remove the phase's bar; stop drawing when no phase is left."""
        if name not in self._tasks:
            return
        task, _ = self._tasks.pop(name)
        self._progress().remove_task(task)
        if not self._tasks:
            self._bar.stop()
            self._bar = None

    def cancelled(self) -> bool:
        """True once Ctrl-C was pressed inside :meth:`cancellable`."""
        return self._cancel_requested

    @contextlib.contextmanager
    def cancellable(self) -> Iterator[None]:
        """Ctrl-C, SIGTERM and SIGHUP request a cancel (asked between build steps) instead of
        interrupting; the signal is recorded so that the exit code names it."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        from trtimport.cli.guard import CANCEL_SIGNALS, record_signal

        numbers = [n for n in CANCEL_SIGNALS if signal.getsignal(n) is not signal.SIG_IGN]
        previous = {number: signal.getsignal(number) for number in numbers}

        def handler(signum: int, frame: Any) -> None:
            self._cancel_requested = True
            record_signal(signum)

        for number in numbers:
            signal.signal(number, handler)
        try:
            yield
        finally:
            for number, action in previous.items():
                signal.signal(number, action)
