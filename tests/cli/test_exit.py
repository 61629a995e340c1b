"""The ``trtimport`` command ends without the interpreter's shutdown, but like a normal exit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import atexit, sys, threading, time
from pathlib import Path
marks = Path(sys.argv[1])
atexit.register(lambda: marks.joinpath("atexit").write_text("ran"))
class Teardown:
    def __del__(self):
        marks.joinpath("teardown").write_text("ran")
kept = Teardown()  # freed only by the interpreter's own shutdown
if sys.argv[2] == "thread":
    def late():
        time.sleep(0.3)
        marks.joinpath("thread").write_text("finished")
    threading.Thread(target=late).start()
sys.argv = ["trtimport", *sys.argv[3:]]
print("before the command", end="")  # left in stdout's buffer: the exit must flush it
from trtimport.cli import run
run()
"""


def _run(tmp_path: Path, thread: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path), thread, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_exit_handlers_run_and_output_is_flushed(tmp_path: Path) -> None:
    done = _run(tmp_path, "none", "formats")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("before the command") and "onnx" in done.stdout
    assert (tmp_path / "atexit").read_text() == "ran"
    assert not (tmp_path / "teardown").exists()  # the shutdown was skipped


def test_the_exit_code_is_kept(tmp_path: Path) -> None:
    done = _run(tmp_path, "none", str(tmp_path / "missing.onnx"))
    assert done.returncode == 1
    assert "missing.onnx" in done.stderr and "Traceback" not in done.stderr
    assert (tmp_path / "atexit").read_text() == "ran"


def test_a_running_thread_is_waited_for(tmp_path: Path) -> None:
    done = _run(tmp_path, "thread", "formats")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "thread").read_text() == "finished"
    assert (tmp_path / "atexit").read_text() == "ran"
    assert (tmp_path / "teardown").exists()  # a normal exit, which waited for the thread
