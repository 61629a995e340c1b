"""Large models through the command line, side by side with the floor and the bare build.

Every side is a fresh process started as a user starts it, run in rotating order, several
repetitions, in one run of this script; wall time and peak RSS (``ru_maxrss`` of the process)
are recorded, and the medians compared:

- ``floor``: ``cp`` of the caffemodel (no conversion can be faster than copying the weights);
- ``bare``: benchmarks/bare_build.py (TensorRT-RTX's defaults: parse, build, write) on the ONNX
  file ``trtimport --save-onnx`` gives for the same net (made once, before the timed runs);
- ``to-onnx``: ``trtimport VGG16.prototxt --weights vgg16.caffemodel --save-onnx OUT.onnx
  --no-engine -q``;
- ``to-engine``: ``trtimport VGG16.prototxt --weights vgg16.caffemodel -o OUT.engine -q``;
- ``missing``: ``trtimport`` on a file that does not exist; ``unreadable``: on a file it may not
  read (a dangling symbolic link when run as root, whom permissions do not stop). Both must fail.

With ``--big-uff``, the same four sides for a VGG16-shaped UFF file (benchmarks/big_uff.py:
553 MB of float32 weights, made once): ``floor`` copies the ``.uff``, ``to-onnx`` and
``to-engine`` run ``trtimport vgg16.uff …``, ``bare`` builds the ONNX file ``--save-onnx``
gives for it.

With ``--big-onnx``, a further comparison builds an ONNX model with ``--big-gib`` GiB of external
data (benchmarks/big_onnx.py): ``bare`` against ``trtimport MODEL -o OUT -q``. Its runs need
about 3.3x the weights in memory each.

The VGG16 caffemodel (seeded random weights, 553 MB) is made once with ``trtimport caffe
make-weights`` in ``--data`` (default: a ``trtimport-bench`` folder in the temporary folder),
and so is the big model. Run from the repository root:

    python benchmarks/bench_cli.py [--reps 5] [--data DIR] [--big-uff] [--uff-reps 3]
        [--big-onnx] [--big-reps 2] [--no-vgg16]
"""

from __future__ import annotations

import argparse
import filecmp
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from bench_overhead import bootstrap_interval, child_env  # noqa: E402

PROTOTXT = REPO / "tests" / "data" / "caffe" / "VGG16.prototxt"


@dataclass
class Runs:
    """Wall seconds and peak RSS (bytes) of each run of one side."""

    wall: list[float] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)

    @property
    def wall_median(self) -> float:
        """Median wall time."""
        return statistics.median(self.wall)

    @property
    def rss_median(self) -> float:
        """Median peak RSS."""
        return statistics.median(self.rss)


def run_once(
    cmd: list[str], env: dict[str, str], expect_failure: bool = False
) -> tuple[float, int]:
    """Wall time and peak RSS of one fresh process.

    The peak RSS comes from GNU time (``/usr/bin/time -f %M``): a process started from this
    one would count this one's memory in its ``ru_maxrss`` (the high-water mark survives
    ``exec``), while GNU time's own child starts small.
    """
    os.sync()
    with tempfile.NamedTemporaryFile("r") as rss_file:
        timed = ["/usr/bin/time", "-f", "%M", "-o", rss_file.name, *cmd]
        start = time.perf_counter()
        proc = subprocess.run(timed, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        seconds = time.perf_counter() - start
        rss_kib = int(rss_file.read().split()[-1])
    if (proc.returncode != 0) != expect_failure:
        raise SystemExit(f"{' '.join(cmd)} exited with {proc.returncode}:\n{proc.stderr.decode()}")
    return seconds, rss_kib * 1024


def measure(
    sides: dict[str, list[str]],
    reps: int,
    env: dict[str, str],
    failing: frozenset[str] = frozenset(),
    warm_up: bool = True,
) -> dict[str, Runs]:
    """Run every side ``reps`` times in rotating order, after one warm-up run each."""
    for name, cmd in sides.items() if warm_up else ():
        run_once(cmd, env, name in failing)
    runs = {name: Runs() for name in sides}
    names = list(sides)
    for i in range(reps):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            wall, rss = run_once(sides[name], env, name in failing)
            runs[name].wall.append(wall)
            runs[name].rss.append(rss)
            print(f"  {name}: {wall:.2f} s, {rss / 2**20:.0f} MiB", file=sys.stderr, flush=True)
    return runs


def trtimport_cmd(*args: str) -> list[str]:
    """``python -m trtimport ARGS`` (no ``trtimport`` script may be on PATH)."""
    return [sys.executable, "-m", "trtimport", *args]


def ensure_caffemodel(prototxt: Path, data: Path, env: dict[str, str]) -> Path:
    """Seeded random weights for ``prototxt`` (made once)."""
    caffemodel = data / f"{prototxt.stem.lower()}.caffemodel"
    if not caffemodel.is_file():
        cmd = trtimport_cmd("caffe", "make-weights", str(prototxt), "-o", str(caffemodel))
        subprocess.run([*cmd, "--seed", "0"], env=env, check=True, stdout=subprocess.DEVNULL)
    return caffemodel


def table(runs: dict[str, Runs]) -> list[str]:
    """Markdown rows: median wall, median peak RSS and every run's wall time."""
    lines = ["| side | median wall s | median peak RSS MiB | wall runs (s) |", "|---|---|---|---|"]
    for name, r in runs.items():
        each = ", ".join(f"{w:.2f}" for w in r.wall)
        lines.append(f"| {name} | {r.wall_median:.2f} | {r.rss_median / 2**20:,.0f} | {each} |")
    return lines


def ratio_line(label: str, ours: list[float], base: list[float], target: float) -> str:
    """Ratio of medians, its bootstrap interval and the median per-repetition ratio."""
    ratio = statistics.median(ours) / statistics.median(base)
    low, high = bootstrap_interval(ours, base)
    pairs = statistics.median(o / b for o, b in zip(ours, base, strict=True))
    verdict = "met" if ratio <= target else "NOT met"
    return (
        f"{label}: {ratio:.3f} (target <= {target}: {verdict}); 95% interval {low:.3f}-"
        f"{high:.3f}; per-repetition {pairs:.3f}"
    )


def _model_sides(
    cli: list[str], weights: Path, work: Path, env: dict[str, str]
) -> dict[str, list[str]]:
    """floor, bare, to-onnx and to-engine for the model ``cli`` names (its ONNX made first)."""
    onnx = work / "model.onnx"
    subprocess.run(
        trtimport_cmd(*cli, "--save-onnx", str(onnx), "--no-engine", "-q"), env=env, check=True
    )
    return {
        "floor": ["cp", str(weights), str(work / f"copy{weights.suffix}")],
        "bare": [sys.executable, str(HERE / "bare_build.py"), str(onnx), str(work / "bare.engine")],
        "to-onnx": trtimport_cmd(*cli, "--save-onnx", str(work / "out.onnx"), "--no-engine", "-q"),
        "to-engine": trtimport_cmd(*cli, "-o", str(work / "out.engine"), "-q"),
    }


def _model_report(title: str, runs: dict[str, Runs], weights: Path, work: Path) -> list[str]:
    """The report of :func:`_model_sides`' runs against the weights file's size."""
    model_bytes = weights.stat().st_size
    same_onnx = filecmp.cmp(work / "out.onnx", work / "model.onnx", shallow=False)
    same_engine = filecmp.cmp(work / "out.engine", work / "bare.engine", shallow=False)
    floor, bare = runs["floor"], runs["bare"]
    floor_and_bare = [f + b for f, b in zip(floor.wall, bare.wall, strict=True)]
    to_onnx, to_engine = runs["to-onnx"], runs["to-engine"]
    return [
        f"{title}: {weights.name} of {model_bytes:,} bytes (seeded random weights)",
        f"ONNX saved by to-onnx identical to the one bare builds: {same_onnx}; "
        f"engines identical: {same_engine}",
        "",
        *table(runs),
        "",
        f"to-onnx wall: {to_onnx.wall_median:.2f} s (target <= 1.0 s: "
        f"{'met' if to_onnx.wall_median <= 1.0 else 'NOT met'}); x floor "
        f"{to_onnx.wall_median / floor.wall_median:.2f}",
        f"to-onnx peak RSS / {weights.suffix} file: {to_onnx.rss_median / model_bytes:.3f} "
        "(target <= 0.6)",
        ratio_line("to-engine / (floor + bare), wall", to_engine.wall, floor_and_bare, 1.15),
        f"to-engine / bare, wall: {to_engine.wall_median / bare.wall_median:.3f}",
        f"to-engine / bare, peak RSS: {to_engine.rss_median / bare.rss_median:.3f} (target <= 1.1)",
    ]


def caffe_net(prototxt: Path, data: Path, work: Path, reps: int, env: dict[str, str]) -> list[str]:
    """The Caffe comparison; returns the report's lines."""
    caffemodel = ensure_caffemodel(prototxt, data, env)
    sides = _model_sides([str(prototxt), "--weights", str(caffemodel)], caffemodel, work, env)
    unreadable = work / "unreadable.onnx"
    if os.geteuid() == 0:
        unreadable.symlink_to(work / "gone.onnx")
    else:
        unreadable.write_bytes((work / "model.onnx").read_bytes()[:4096])
        unreadable.chmod(0)
    sides["missing"] = trtimport_cmd(str(work / "missing.onnx"), "-q")
    sides["unreadable"] = trtimport_cmd(str(unreadable), "-q")
    runs = measure(sides, reps, env, failing=frozenset({"missing", "unreadable"}))
    lines = _model_report(prototxt.name, runs, caffemodel, work)
    for name in ("missing", "unreadable"):
        wall = runs[name].wall_median
        lines.append(f"{name} input fails in {wall:.3f} s (target <= 0.3 s)")
    return lines


def big_uff(data: Path, work: Path, reps: int, env: dict[str, str]) -> list[str]:
    """The large UFF comparison (benchmarks/big_uff.py, made once); returns the report's lines."""
    from big_uff import write_big_uff

    model = data / "uff" / "vgg16.uff"
    if not model.is_file():
        write_big_uff(model.parent)
    folder = work / "uff"
    folder.mkdir()
    runs = measure(_model_sides([str(model)], model, folder, env), reps, env)
    return _model_report("VGG16-shaped UFF", runs, model, folder)


def big_onnx(data: Path, work: Path, gib: float, reps: int, env: dict[str, str]) -> list[str]:
    """The large external-data ONNX comparison; returns the report's lines."""
    from big_onnx import write_big_onnx

    model = data / "big" / "big.onnx"
    if not model.is_file():
        write_big_onnx(model.parent, gib)
    weights = model.with_name(model.name + ".data").stat().st_size
    sides = {
        "bare": [sys.executable, str(HERE / "bare_build.py"), str(model), str(work / "big.engine")],
        "trtimport": trtimport_cmd(str(model), "-o", str(work / "ours.engine"), "-q"),
    }
    runs = measure(sides, reps, env, warm_up=False)  # each run reads the same 3 GiB first
    same = filecmp.cmp(work / "big.engine", work / "ours.engine", shallow=False)
    rss = runs["trtimport"].rss_median / runs["bare"].rss_median
    return [
        f"ONNX with {weights:,} bytes of external data; engines identical: {same}",
        "",
        *table(runs),
        "",
        f"trtimport / bare, peak RSS: {rss:.3f} "
        f"(target <= 1.2: {'met' if rss <= 1.2 else 'NOT met'})",
        ratio_line("trtimport / bare, wall", runs["trtimport"].wall, runs["bare"].wall, 1.15),
    ]


def main() -> None:
    """Run the comparisons and print a markdown report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument(
        "--data", type=Path, default=Path(tempfile.gettempdir()) / "trtimport-bench"
    )
    parser.add_argument("--big-onnx", action="store_true", help="also the big ONNX comparison")
    parser.add_argument("--big-uff", action="store_true", help="also the large UFF comparison")
    parser.add_argument("--uff-reps", type=int, default=3)
    parser.add_argument("--no-vgg16", action="store_true", help="skip the Caffe comparison")
    parser.add_argument(
        "--prototxt", type=Path, default=PROTOTXT, help="another Caffe net instead of VGG16"
    )
    parser.add_argument("--big-gib", type=float, default=3.0)
    parser.add_argument("--big-reps", type=int, default=2)
    args = parser.parse_args()
    args.data.mkdir(parents=True, exist_ok=True)
    import tensorrt_rtx

    print(
        f"{time.strftime('%Y-%m-%d %H:%M')}; {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, tensorrt_rtx {tensorrt_rtx.__version__}; "
        f"load average {os.getloadavg()[0]:.1f}; fresh processes, rotating order"
    )
    work = Path(tempfile.mkdtemp(prefix="trtimport-bench-", dir=args.data))
    try:
        env = child_env(work / "pycache")
        if not args.no_vgg16:
            print(f"\n{args.reps} repetitions per side\n")
            print("\n".join(caffe_net(args.prototxt, args.data, work, args.reps, env)))
        if args.big_uff:
            print(f"\n{args.uff_reps} repetitions per side\n")
            print("\n".join(big_uff(args.data, work, args.uff_reps, env)))
        if args.big_onnx:
            print(f"\n{args.big_reps} repetitions per side\n")
            print("\n".join(big_onnx(args.data, work, args.big_gib, args.big_reps, env)))
        print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
