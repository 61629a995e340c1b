"""Caffe → ONNX conversion speed and memory, side by side with the floor and caffe2onnx.

    python benchmarks/bench_caffe.py [--update-docs] [--caffe2onnx-timeout 600]

Measured in one run, each step in a fresh Python process after an ``os.sync()``: wall time of
the work (the step's imports are done first and reported apart) and peak RSS of the process;
the fast steps run ``--repeat`` times and the fastest run counts (file I/O timing is noisy):

- floor: copying the caffemodel's bytes to a new file (no conversion can beat it);
- trtimport: ``load_caffe`` + ``caffe_to_onnx``, prototxt + caffemodel → .onnx file;
- trtimport-io: only the reading and writing part of it: ``load_caffe`` and ``write_onnx`` of
  every blob as it is stored (no layer conversion), to separate I/O from conversion costs;
- caffe2onnx 2.0.1 (PyPI), the same conversion, with a timeout. It needs the pure-Python
  protobuf implementation (its generated code predates protobuf 4).

The caffemodel is VGG16 (tests/data/caffe/VGG16.prototxt) with seeded random weights, made once
by ``trtimport caffe make-weights`` into a cache folder. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_PROTOTXT = REPO / "tests" / "data" / "caffe" / "VGG16.prototxt"
DOCS = REPO / "docs" / "performance.md"
SECTION = "## Breakdown: Caffe → ONNX in the library (VGG16, 553 MB)"
STEPS = ("floor", "trtimport", "trtimport-io", "caffe2onnx")
TARGET_SECONDS = 1.5
CAFFE2ONNX_NOTE = (
    "caffe2onnx 2.0.1 runs with `PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python` (installed with "
    "`pip install --no-deps`, as it pins onnx 1.6): its generated protobuf code predates "
    "protobuf 4 and does not load otherwise."
)
TARGET_RSS_RATIO = 1.5


# ----------------------------------------------------------------- one step (child process)


#: Modules each step needs, imported (and timed) before its work starts.
IMPORTS: dict[str, tuple[str, ...]] = {
    "floor": ("shutil",),
    "trtimport": (
        "trtimport.importers.caffe.convert",
        "trtimport.importers.caffe.layers",
        "trtimport.importers.caffe.parse",
        "trtimport.onnxtools.writer",
    ),
    "trtimport-io": ("trtimport.importers.caffe.parse", "trtimport.onnxtools.writer"),
    "caffe2onnx": ("caffe2onnx.src.caffe2onnx", "caffe2onnx.src.load_save_model"),
}


def run_step(step: str, prototxt: Path, caffemodel: Path, out: Path) -> dict[str, Any]:
    """Do one measured step in this process: seconds of imports, of work, and peak RSS."""
    import importlib

    start = time.perf_counter()
    for module in IMPORTS[step]:
        importlib.import_module(module)
    imported = time.perf_counter()
    if step == "floor":
        import shutil

        shutil.copyfile(caffemodel, out)
    elif step == "trtimport":
        from trtimport.importers.caffe.convert import caffe_to_onnx
        from trtimport.importers.caffe.parse import load_caffe

        caffe_to_onnx(load_caffe(prototxt, caffemodel), out)
    elif step == "trtimport-io":
        from trtimport.importers.caffe.parse import load_caffe
        from trtimport.onnxtools import encode
        from trtimport.onnxtools.writer import write_onnx

        model = load_caffe(prototxt, caffemodel)
        blobs = {f"{k}/{i}": b for k, v in model.weights.items() for i, b in enumerate(v)}
        write_onnx(out, encode.graph([], "weights", [], []), blobs, 17, "bench")
    elif step == "caffe2onnx":
        from caffe2onnx.src.caffe2onnx import Caffe2Onnx
        from caffe2onnx.src.load_save_model import loadcaffemodel, saveonnxmodel

        graph, params = loadcaffemodel(str(prototxt), str(caffemodel))
        saveonnxmodel(Caffe2Onnx(graph, params, str(out)).createOnnxModel(), str(out))
    done = time.perf_counter()
    # VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over from the parent's memory
    # at fork+exec, which would charge this step with the driver's own size.
    return {
        "seconds": done - imported,
        "import_seconds": imported - start,
        "peak_rss": _peak_rss_of(os.getpid()),
    }


# ------------------------------------------------------------------------ driver (parent)


def _peak_rss_of(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def measure(
    step: str, prototxt: Path, caffemodel: Path, workdir: Path, timeout: float
) -> dict[str, Any]:
    """Run ``step`` in a fresh process; on timeout, kill it and report how far it got."""
    out = workdir / f"{step}.out"
    out.unlink(missing_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    if step == "caffe2onnx":
        env["PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"] = "python"
    command = [sys.executable, __file__, "--step", step, "--prototxt", str(prototxt)]
    command += ["--caffemodel", str(caffemodel), "--out", str(out)]
    os.sync()  # start every step without the previous one's dirty pages still being flushed
    started = time.perf_counter()
    child = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    peak = 0
    while child.poll() is None:
        peak = max(peak, _peak_rss_of(child.pid) or 0)
        if time.perf_counter() - started > timeout:
            child.kill()
            child.wait()
            out.unlink(missing_ok=True)
            return {"step": step, "finished": False, "timeout": timeout, "peak_rss": peak}
        time.sleep(0.05)
    stdout, stderr = child.communicate()
    if child.returncode != 0:
        return {"step": step, "finished": False, "error": stderr.strip().splitlines()[-1:]}
    result = json.loads(stdout.strip().splitlines()[-1])
    result.update(step=step, finished=True, output_bytes=out.stat().st_size)
    if step != "floor":
        import onnx

        onnx.checker.check_model(str(out))
    out.unlink()
    return result


def best_of(tries: list[dict[str, Any]]) -> dict[str, Any]:
    """The fastest finished run (file I/O timing is noisy), with the highest peak RSS seen."""
    finished = [t for t in tries if t["finished"]]
    if not finished:
        return tries[0]
    best = dict(min(finished, key=lambda t: t["seconds"]))
    best["peak_rss"] = max(t["peak_rss"] for t in finished)
    best["runs"] = len(tries)
    return best


def ensure_caffemodel(prototxt: Path, seed: int, cache: Path) -> Path:
    """The seeded random caffemodel for ``prototxt``, made once into ``cache``."""
    import hashlib

    from trtimport.importers.caffe.make_weights import make_caffe_weights

    digest = hashlib.sha256(prototxt.read_bytes()).hexdigest()[:12]
    path = cache / f"{prototxt.stem}-{digest}-seed{seed}.caffemodel"
    if not path.exists():
        print(f"making {path} (once) …", file=sys.stderr)
        make_caffe_weights(prototxt, path, seed=seed)
    return path


def _mb(n: int | None) -> str:
    return "-" if not n else f"{n / 1e6:,.0f} MB"


def table(results: list[dict[str, Any]], size: int) -> str:
    """A Markdown table of the results with ratios to the floor and to the caffemodel size."""
    by = {r["step"]: r for r in results}
    floor = by.get("floor", {}).get("seconds")
    rows = [
        "| step | wall time | x floor | imports | peak RSS | RSS / caffemodel |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        if r["finished"]:
            wall = f"{r['seconds']:.2f} s"
            ratio = f"{r['seconds'] / floor:.1f}x" if floor else "-"
        elif "timeout" in r:
            wall, ratio = f"did not finish in {r['timeout']:.0f} s", "-"
        else:
            wall, ratio = f"failed: {' '.join(r.get('error', []))}", "-"
        rss = r.get("peak_rss")
        rss_ratio = f"{rss / size:.2f}x" if rss else "-"
        imports = f"{r['import_seconds']:.2f} s" if "import_seconds" in r else "-"
        rows.append(f"| {r['step']} | {wall} | {ratio} | {imports} | {_mb(rss)} | {rss_ratio} |")
    return "\n".join(rows)


def verdict(results: list[dict[str, Any]], size: int) -> str:
    """One line saying whether trtimport met the targets, and its ratio to caffe2onnx."""
    by = {r["step"]: r for r in results}
    ours = by.get("trtimport")
    if ours is None:
        return ""
    if not ours["finished"]:
        return "trtimport did not finish."
    fast = ours["seconds"] <= TARGET_SECONDS
    small = ours["peak_rss"] <= TARGET_RSS_RATIO * size
    line = (
        f"trtimport: {ours['seconds']:.2f} s plus {ours['import_seconds']:.2f} s of imports "
        f"(target ≤ {TARGET_SECONDS} s: "
        f"{'met' if fast else 'missed'}), peak RSS {ours['peak_rss'] / size:.2f}x the "
        f"caffemodel (target ≤ {TARGET_RSS_RATIO}x: {'met' if small else 'missed'})."
    )
    theirs = by.get("caffe2onnx")
    if theirs and theirs["finished"]:
        line += f" caffe2onnx took {theirs['seconds'] / ours['seconds']:.0f}x as long"
        line += f" and {theirs['peak_rss'] / ours['peak_rss']:.0f}x the memory."
    elif theirs and "timeout" in theirs:
        line += (
            f" caffe2onnx did not finish within {theirs['timeout']:.0f} s "
            f"(≥ {theirs['timeout'] / ours['seconds']:.0f}x as long; it had reached "
            f"{_mb(theirs['peak_rss'])} of RSS when stopped)."
        )
    return line


def update_docs(report: str) -> None:
    """Replace (or append) this benchmark's section of docs/performance.md."""
    text = DOCS.read_text() if DOCS.exists() else "# Performance\n"
    start = text.find(SECTION)
    if start >= 0:
        end = text.find("\n## ", start + len(SECTION))
        text = text[:start] + report + ("" if end < 0 else text[end:])
    else:
        text = text.rstrip("\n") + "\n\n" + report
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    DOCS.write_text(text.rstrip("\n") + "\n")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or, with ``--step``, one measured step)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prototxt", type=Path, default=DEFAULT_PROTOTXT)
    parser.add_argument("--caffemodel", type=Path, help="default: seeded random weights")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "trtimport-bench"
    )
    parser.add_argument("--caffe2onnx-timeout", type=float, default=600.0)
    parser.add_argument("--steps", default=",".join(STEPS), help="comma-separated steps to run")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each step but caffe2onnx; the fastest counts"
    )
    parser.add_argument("--update-docs", action="store_true", help="write docs/performance.md")
    parser.add_argument("--json", action="store_true", help="print the raw results as JSON")
    parser.add_argument("--step", choices=STEPS, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO / "src"))  # measure this checkout, not an installed copy

    if args.step:
        print(json.dumps(run_step(args.step, args.prototxt, args.caffemodel, args.out)))
        return 0

    args.cache.mkdir(parents=True, exist_ok=True)
    caffemodel = args.caffemodel or ensure_caffemodel(args.prototxt, args.seed, args.cache)
    size = caffemodel.stat().st_size
    results = []
    with tempfile.TemporaryDirectory(dir=args.cache) as work:
        for step in args.steps.split(","):
            timeout = args.caffe2onnx_timeout if step == "caffe2onnx" else 600.0
            runs = 1 if step == "caffe2onnx" else args.repeat
            print(f"measuring {step} ({runs} run(s)) …", file=sys.stderr)
            tries = [
                measure(step, args.prototxt, caffemodel, Path(work), timeout) for _ in range(runs)
            ]
            results.append(best_of(tries))
    if args.json:
        print(json.dumps({"caffemodel_bytes": size, "results": results}, indent=2))
        return 0
    command = "python benchmarks/bench_caffe.py" + (
        f" --caffe2onnx-timeout {args.caffe2onnx_timeout:.0f}" if "caffe2onnx" in args.steps else ""
    )
    report = "\n".join(
        [
            SECTION,
            "",
            f"`{command}` on {os.cpu_count()} CPUs: {args.prototxt.name} with "
            + ("its given" if args.caffemodel else f"seeded random (seed {args.seed})")
            + f" weights ({size / 1e6:,.0f} MB caffemodel) to an ONNX file, each step in a "
            "fresh process after `os.sync()`; wall time of the work (imports apart, fastest of "
            f"{args.repeat} runs except caffe2onnx) and peak RSS of the process.",
            "",
            table(results, size),
            "",
            verdict(results, size),
            "",
            CAFFE2ONNX_NOTE if "caffe2onnx" in args.steps else "",
        ]
    )
    print(report)
    if args.update_docs:
        update_docs(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
