"""Run many CLI cases in one process and report each as a JSON line.

``python tests/fuzz/driver.py CASES.json RESULTS.jsonl`` calls ``trtimport.cli.main(argv)``
for each case in its folder, with stdout and stderr captured and an alarm for hangs, and
records: the exit code, stderr, a traceback if an exception escaped, the files that appeared,
changed or vanished in the folder, and whether each protected file is byte-identical. A
``start`` line is written (and flushed) before each case, so that a crash of the whole process
names its case. The test that starts this process sets its memory limit and timeout.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Any


class Hang(BaseException):
    """A case ran past its time (raised by SIGALRM)."""


def _on_alarm(signum: int, frame: Any) -> None:
    raise Hang


def listing(folder: Path) -> dict[str, tuple[int, int]]:
    """Relative path -> (size, mtime_ns) of everything under ``folder`` (symlinks unfollowed)."""
    found = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root, name)
            info = path.lstat()
            found[str(path.relative_to(folder))] = (info.st_size, info.st_mtime_ns)
    return found


def digest(path: Path) -> str | None:
    """SHA-256 of a regular file; None where it is missing or not a regular file."""
    if not path.is_file() or (path.is_symlink() and not path.resolve().is_file()):
        return None
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def run_case(case: dict[str, Any]) -> dict[str, Any]:
    """One case: ``argv``, ``cwd``, ``protected`` (paths), ``timeout`` seconds."""
    from trtimport.cli import main

    cwd = Path(case["cwd"])
    os.chdir(cwd)
    before = listing(cwd)
    protected = {p: digest(Path(p)) for p in case.get("protected", [])}
    out, err = io.StringIO(), io.StringIO()
    code: int | None = None
    escaped = None
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(int(case.get("timeout", 60)))
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(case["argv"])
    except SystemExit as exc:  # argparse
        code = exc.code if isinstance(exc.code, int) else 1
    except Hang:
        escaped = "hang"
    except BaseException:
        escaped = traceback.format_exc()
    finally:
        signal.alarm(0)
    after = listing(cwd)
    return {
        "name": case["name"],
        "code": code,
        "stderr": err.getvalue(),
        "escaped": escaped,
        "new": sorted(set(after) - set(before)),
        "gone": sorted(set(before) - set(after)),
        "protected_changed": [p for p, d in protected.items() if digest(Path(p)) != d],
    }


def main() -> None:
    """Run every case of the cases file, appending a result line for each."""
    cases = json.loads(Path(sys.argv[1]).read_text())
    with open(sys.argv[2], "a", encoding="utf-8") as results:
        for case in cases:
            results.write(json.dumps({"start": case["name"]}) + "\n")
            results.flush()
            results.write(json.dumps(run_case(case)) + "\n")
            results.flush()


if __name__ == "__main__":
    main()
