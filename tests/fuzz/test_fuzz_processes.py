"""Fuzz cases that need a process of their own: signals, kills, resource limits, the current
folder of ``python -m trtimport``, exit codes, and the TensorFlow formats."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import fuzz_corpus
import fuzz_harness
import onnx_models
import pytest


def _trtimport(
    *args: str, cwd: Path, env: dict[str, str] | None = None, preexec=None, timeout: int = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trtimport", *args],
        cwd=cwd,
        env={**fuzz_harness.child_env(), **(env or {})},
        preexec_fn=preexec or fuzz_harness.limits(fuzz_harness.MEMORY_LIMIT),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _one_error(done: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 1 and len(errors) == 1, done.stderr
    return errors[0]


def _leftovers(*folders: Path) -> list[str]:
    return [p.name for f in folders for p in f.iterdir() if p.name.endswith(".tmp")]


#: Holds an atomic output open (its temporary file written) until a signal arrives.
HOLD = """
import sys, time
from pathlib import Path
from trtimport.cli.guard import install_signal_handlers
from trtimport.core.files import atomic_path
install_signal_handlers()
try:
    with atomic_path(Path(sys.argv[1])) as tmp:
        tmp.write_bytes(b"x" * 100000)
        print("ready", flush=True)
        if sys.argv[2] == "kill":
            import os, signal
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(60)
except KeyboardInterrupt:
    sys.exit(3)
"""


@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP", "SIGINT"])
def test_signal_removes_temporary_output(tmp_path: Path, name: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path / "out.engine"), "wait"],
        env=fuzz_harness.child_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    assert _leftovers(tmp_path), "the temporary folder should exist while the output is open"
    proc.send_signal(getattr(signal, name))
    assert proc.wait(timeout=30) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_killed_run_leftovers_are_removed_by_the_next_run(tmp_path: Path) -> None:
    onnx_models.save(onnx_models.conv_relu(), tmp_path / "m.onnx")
    temp = tmp_path / "temp"
    temp.mkdir()
    killed = subprocess.run(
        [sys.executable, "-c", HOLD, str(tmp_path / "out.engine"), "kill"],
        env=fuzz_harness.child_env(),
        capture_output=True,
        timeout=60,
    )
    assert killed.returncode == -signal.SIGKILL
    left = _leftovers(tmp_path)
    assert len(left) == 1 and left[0].startswith(".out.engine."), left
    # A work folder of a dead run in the temporary folder, and one of a live process.
    (temp / "trtimport-run-999999999.0123456789.tmp").mkdir()
    live = temp / f"trtimport-run-{os.getpid()}.0123456789.tmp"
    live.mkdir()
    done = _trtimport("m.onnx", "-o", "out.engine", "-q", cwd=tmp_path, env={"TMPDIR": str(temp)})
    assert done.returncode == 0, done.stderr
    assert _leftovers(tmp_path) == []
    assert [p.name for p in temp.iterdir()] == [live.name]


@pytest.mark.parametrize("kind", ["onnx", "caffe"])
def test_real_build_interrupted_at_any_moment_leaves_whole_files_or_none(
    tmp_path: Path, kind: str
) -> None:
    """SIGTERM a real convert (with --save-onnx) at several moments: each run either finished
    (complete outputs) or was interrupted (exit 143, nothing written, nothing left
    beside the outputs or in TMPDIR). Caffe conversions use a work folder in TMPDIR."""
    if kind == "onnx":
        models = [onnx_models.save(onnx_models.conv_relu(), tmp_path / "m.onnx")]
    else:
        from trtimport.importers.caffe.make_weights import make_caffe_weights

        proto = tmp_path / "m.prototxt"
        proto.write_bytes(fuzz_corpus.LENET.read_bytes())
        models = [proto, make_caffe_weights(proto, tmp_path / "m.caffemodel").path]
    argv = [models[0].name, *(["--weights", models[1].name] if len(models) > 1 else [])]
    inputs = sorted(m.name for m in models)
    outcomes = set()
    for delay in (0.05, 0.4, 0.8, 1.2, 1.6):
        work, temp = tmp_path / f"d{delay}", tmp_path / f"t{delay}"
        work.mkdir()
        temp.mkdir()
        for model in models:
            (work / model.name).write_bytes(model.read_bytes())
        proc = subprocess.Popen(
            [sys.executable, "-m", "trtimport", *argv, "-o", "o.engine", "--save-onnx",
             "o.onnx", "-q"],
            cwd=work,
            env={**fuzz_harness.child_env(), "TMPDIR": str(temp)},
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        time.sleep(delay)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=120)
        assert "Traceback" not in stderr, stderr
        names = sorted(p.name for p in work.iterdir())
        if proc.returncode == 0:
            assert names == sorted([*inputs, "o.engine", "o.engine.json", "o.onnx"])
        else:
            # Before the handlers are installed, SIGTERM ends Python at once (-15). The
            # outputs land together (signals are held while they are renamed) or not at all.
            assert proc.returncode in (128 + signal.SIGTERM, -signal.SIGTERM), stderr
            assert names in (inputs, sorted([*inputs, "o.engine", "o.engine.json", "o.onnx"]))
        assert list(temp.iterdir()) == [], f"left in TMPDIR after {delay} s"
        outcomes.add(proc.returncode)
    assert outcomes - {0}, "no run was interrupted: the delays are too long for this machine"


def test_output_write_failure_is_one_error_and_leaves_nothing(tmp_path: Path) -> None:
    """A file-size limit makes the engine write fail (EFBIG), as a full disk would (ENOSPC)."""
    onnx_models.save(onnx_models.conv_relu(), tmp_path / "m.onnx")

    def limited() -> None:
        fuzz_harness.limits(fuzz_harness.MEMORY_LIMIT)()
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    done = _trtimport("m.onnx", "-o", "out.engine", "-q", cwd=tmp_path, preexec=limited)
    assert "out.engine" in _one_error(done)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_python_m_never_imports_from_the_current_folder(tmp_path: Path) -> None:
    marker = tmp_path / "IMPORTED"
    for module in ("onnx", "x", "numpy"):
        (tmp_path / f"{module}.py").write_text(
            f"from pathlib import Path\nPath({str(marker)!r}).write_text({module!r})\n"
        )
    dist = tmp_path / "x-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: x\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[trtimport]\nx = x\n")
    onnx_models.save(onnx_models.conv_relu(), tmp_path / "m.onnx")
    for args in (["formats"], ["m.onnx", "--no-engine", "-q"]):
        done = _trtimport(*args, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert not marker.exists(), f"trtimport {args} imported {marker.read_text()}.py"
        assert "x" not in done.stdout.split()


@pytest.mark.parametrize(
    "args", [["--no-such-flag"], ["run"], ["m.onnx", "--opt-level", "x"], ["nope", "--json"]]
)
def test_usage_errors_exit_1_with_one_error_line(tmp_path: Path, args: list[str]) -> None:
    _one_error(_trtimport(*args, cwd=tmp_path))


def test_isolated_crash_is_a_clear_error(tmp_path: Path) -> None:
    """The child process that runs crash-prone native code: a SIGSEGV there is one error."""
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from trtimport.core.isolate import call_isolated\n"
        "from trtimport.errors import ModelParseError\n"
        "try:\n"
        "    call_isolated('ctypes:string_at', {'ptr': 8}, Path('m.tflite'), 'a library')\n"
        "except ModelParseError as err:\n"
        "    print(err)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=fuzz_harness.child_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "m.tflite: a library crashed on this file (SIGSEGV)" in done.stdout, done


@pytest.mark.tf
def test_fuzz_tensorflow_formats(tmp_path: Path) -> None:
    """Keras zip bomb, garbage .pb/.tflite/SavedModel/UFF, a network script that must not run."""
    pytest.importorskip("tensorflow")
    cases = fuzz_corpus.other_format_cases(tmp_path / "tf")
    results = fuzz_harness.run_cases(cases, tmp_path, memory=fuzz_harness.TF_MEMORY_LIMIT)
    failures = fuzz_harness.report(cases, results)
    assert not failures, failures
