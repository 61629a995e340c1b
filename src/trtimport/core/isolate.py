"""Run native code that is known to crash on bad input in a child process.

TensorFlow Lite's interpreter and ONNX Runtime's graph optimizer end the process with SIGSEGV
on some corrupt or unusual models: no message, no cleanup. :func:`call_isolated` runs one
function in a fresh Python process instead; a crash there becomes a
:class:`~trtimport.errors.ModelParseError` that names the file and the tool, and an error the
function raises comes back as the same message. Arguments and the result travel as JSON, so
functions exchange files (paths) rather than objects.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from trtimport.errors import ModelParseError, TrtImportError

_CHILD = "from trtimport.core.isolate import child_main; child_main()"


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def _child_path() -> str:
    """The parent's module path (without the current folder), so the child imports the same
    trtimport and plugins."""
    entries = [p for p in sys.path if p and p != os.getcwd()]
    return os.pathsep.join(entries)


def call_isolated(target: str, kwargs: dict[str, Any], source: Path, what: str) -> Any:
    """``module:function(**kwargs)`` in a child process; its JSON-able result.

    ``source`` and ``what`` (e.g. "TensorFlow Lite's interpreter") word the error when the
    child dies from a signal.
    """
    env = dict(os.environ, PYTHONPATH=_child_path())
    request = json.dumps({"target": target, "kwargs": kwargs})
    try:
        done = subprocess.run(
            [sys.executable, "-P", "-c", _CHILD],
            input=request.encode(),
            capture_output=True,
            env=env,
            check=False,
        )
    except OSError as err:
        raise ModelParseError(f"{source}: could not start a process for {what}: {err}") from err
    if done.returncode < 0:
        raise ModelParseError(
            f"{source}: {what} crashed on this file ({_signal_name(done.returncode)}); the "
            "file is corrupt or uses something the library cannot handle. Export it again."
        )
    try:
        reply = json.loads(done.stdout.decode("utf-8", "replace").strip().splitlines()[-1])
    except (ValueError, IndexError) as err:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["nothing"]
        raise ModelParseError(
            f"{source}: {what} ended without an answer (exit code {done.returncode}): {detail[0]}"
        ) from err
    if "error" in reply:
        raise ModelParseError(str(reply["error"]))
    return reply.get("result")


def child_main() -> None:
    """The child's side: read the request on stdin, answer one JSON line on stdout."""
    request = json.loads(sys.stdin.read())
    module, _, name = request["target"].partition(":")
    try:
        result = getattr(importlib.import_module(module), name)(**request["kwargs"])
        reply: dict[str, Any] = {"result": result}
    except TrtImportError as err:
        reply = {"error": str(err)}
    sys.stdout.flush()
    print("\n" + json.dumps(reply), flush=True)
