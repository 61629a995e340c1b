"""Run trtimport's command line in this process: its exit code, output and any traceback.

Runs in worker processes of ``tests/cli/test_no_traceback.py`` and ``tests/test_real_models.py``;
kept apart from the test modules so the workers import only this and what it needs.
"""

from __future__ import annotations

import contextlib
import gc
import io
import traceback
from dataclasses import dataclass


@dataclass(frozen=True)
class CliOutcome:
    """What ``trtimport ARGS`` did: exit code (None when it raised), output, traceback."""

    args: tuple[str, ...]
    code: int | None
    output: str
    traceback: str | None


def cli_outcome(args: tuple[str, ...]) -> CliOutcome:
    """``trtimport ARGS`` as the command line runs it, in this process.

    The command line turns every ``TrtImportError`` into a message and an exit code, so
    anything that escapes :func:`trtimport.cli.main` would reach the user as a traceback.
    """
    from trtimport.cli import main

    sink = io.StringIO()
    code: int | None = None
    failure = None
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            code = main(list(args))
    except SystemExit as end:
        code = int(end.code or 0)  # argparse's own exit, after its message
    except BaseException:  # anything else is what the tests look for
        failure = f"trtimport {' '.join(args)}\n{traceback.format_exc()}"
    finally:
        # Each import collects garbage first (pipeline._collect_earlier_imports); with many
        # imports in one process, that walks TensorFlow's and ONNX's objects every time. Collect
        # this command's leftovers now and freeze what survives, so the next walk is short.
        gc.collect()
        gc.freeze()
    return CliOutcome(args, code, sink.getvalue(), failure)


def cli_traceback(args: tuple[str, ...]) -> str | None:
    """The traceback ``trtimport ARGS`` ended in, or None."""
    return cli_outcome(args).traceback
