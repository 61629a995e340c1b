"""Run fuzz cases through the CLI in a memory-limited, time-limited process, and judge them.

A case is a dict: ``name``, ``argv``, ``cwd``, ``expect`` (``error``, ``ok`` or ``any``),
``allowed`` (files it may create, relative to ``cwd``), ``protected`` (files that must stay
byte-identical) and ``timeout``. :func:`run_cases` runs a batch in one process
(``driver.py``); :func:`problems` lists what a result breaks of trtimport's promises: exit code
0 or 1 with exactly one ``error:`` line, no traceback, no hang, no crash, no file created beyond
those allowed, none removed, and protected files unchanged.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

DRIVER = Path(__file__).with_name("driver.py")
REPO = Path(__file__).resolve().parents[2]

#: Address-space limit of a fuzz process: TensorRT, ONNX Runtime and OpenCV fit in 4 GiB;
#: TensorFlow (imported for its formats) needs more.
MEMORY_LIMIT = 4 << 30
TF_MEMORY_LIMIT = 12 << 30


def limits(memory: int) -> Any:
    """A ``preexec_fn`` that caps the child's address space at ``memory`` bytes."""

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    return apply


def child_env() -> dict[str, str]:
    """The environment for trtimport processes: this checkout's ``src`` first on the path."""
    env = dict(os.environ)
    parts = [str(REPO / "src"), *env.get("PYTHONPATH", "").split(os.pathsep)]
    env["PYTHONPATH"] = os.pathsep.join(str(Path(p).resolve()) for p in parts if p)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def run_cases(
    cases: list[dict[str, Any]], work: Path, *, memory: int = MEMORY_LIMIT, timeout: int = 300
) -> dict[str, dict[str, Any]]:
    """Results by case name. A case that killed the process gets ``crash`` (its signal or
    exit code) and the process's stderr tail; the cases after it are run in a new process."""
    results: dict[str, dict[str, Any]] = {}
    remaining = list(cases)
    round_ = 0
    while remaining:
        round_ += 1
        cases_file = work / f"cases-{round_}.json"
        results_file = work / f"results-{round_}.jsonl"
        cases_file.write_text(json.dumps(remaining))
        try:
            done = subprocess.run(
                [sys.executable, str(DRIVER), str(cases_file), str(results_file)],
                env=child_env(),
                preexec_fn=limits(memory),
                capture_output=True,
                text=True,
                timeout=timeout,
            )
            ended, tail = done.returncode, done.stderr[-3000:]
        except subprocess.TimeoutExpired as err:
            ended, tail = "timeout", str(err.stderr or "")[-3000:]
        started = None
        lines = results_file.read_text().splitlines() if results_file.exists() else []
        for line in lines:
            entry = json.loads(line)
            if "start" in entry:
                started = entry["start"]
            else:
                results[entry["name"]] = entry
                started = None
        if started is None:
            break
        results[started] = {"name": started, "crash": ended, "stderr": tail}
        names = [c["name"] for c in remaining]
        remaining = remaining[names.index(started) + 1 :]
    return results


def problems(case: dict[str, Any], result: dict[str, Any] | None) -> list[str]:
    """What ``result`` breaks of the promises, for ``case``; empty when it keeps them all."""
    if result is None:
        return ["never ran"]
    if "crash" in result:
        return [f"the process died ({result['crash']}): {result['stderr'][-800:]}"]
    found = []
    stderr = result["stderr"]
    if result["escaped"] == "hang":
        found.append("hung")
    elif result["escaped"]:
        found.append(f"exception escaped main():\n{result['escaped'][-1500:]}")
    if "Traceback (most recent call last)" in stderr:
        found.append("a traceback on stderr")
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    code = result["code"]
    if code not in (0, 1):
        found.append(f"exit code {code}")
    elif code == 1 and len(errors) != 1:
        found.append(f"exit code 1 with {len(errors)} error: lines")
    elif code == 0 and errors:
        found.append("exit code 0 with an error: line")
    expect = case.get("expect", "any")
    if expect == "error" and code != 1:
        found.append(f"expected an error, got exit code {code}")
    if expect == "ok" and code != 0:
        found.append(f"expected success, got exit code {code}: {stderr[-600:]}")
    allowed = set(case.get("allowed", []))
    extra = [p for p in result["new"] if p not in allowed]
    if extra:
        found.append(f"new files not asked for: {extra}")
    if result["gone"]:
        found.append(f"files removed: {result['gone']}")
    if result["protected_changed"]:
        found.append(f"protected files changed: {result['protected_changed']}")
    return found


def report(cases: list[dict[str, Any]], results: dict[str, dict[str, Any]]) -> str:
    """One paragraph per case that broke a promise ('' when none did)."""
    parts = []
    for case in cases:
        found = problems(case, results.get(case["name"]))
        if found:
            argv = " ".join(case["argv"])
            parts.append(f"{case['name']} (trtimport {argv}):\n  " + "\n  ".join(found))
    return "\n\n".join(parts)
