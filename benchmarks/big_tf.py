"""A TensorFlow SavedModel past ONNX's 2 GB limit, through the command line, one run per side.

``python benchmarks/big_tf.py FOLDER [--gib 2.25] [--keep] [--no-engine] [--no-tf2onnx]
[--force-large]`` makes ``FOLDER/saved_model``: a chain of 8192x8192 float32 MatMul + Relu
layers held in ``tf.Variable``s (256 MiB each, enough of them for the size asked; seeded uniform
weights scaled so the activations stay finite), input ``x`` 1x8192, saved with
``tf.saved_model.save``. Then each side runs once as a fresh process under GNU time (wall
time, peak RSS), in this order:

- ``floor``: ``cp`` of the SavedModel's variables (no conversion can be faster);
- ``tf2onnx``: tf2onnx alone, in its large-model form, called as trtimport calls it (with
  trtimport's fixes to that form: tf2onnx 1.17 as released fails on NumPy 2, and keeps a copy
  of the weights per optimizer pass), writing nothing: what TensorFlow and tf2onnx hold;
- ``to-onnx``: ``trtimport SAVED --save-onnx out.onnx --no-engine -q``;
- ``bare``: benchmarks/bare_build.py (TensorRT-RTX's defaults) on that ``out.onnx``;
- ``to-engine``: ``trtimport SAVED -o out.engine -q``.

``--force-large`` sets ``TRTIMPORT_TF_LARGE_MODEL_BYTES=0`` for the trtimport sides, so that a
model under the 128 MiB default goes the large-model way too.

Each run needs several times the weights in memory (tf2onnx's copies; TensorRT's build): check
``free -g`` first. Everything is deleted at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import filecmp
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_cli import run_once, trtimport_cmd  # noqa: E402
from bench_overhead import child_env  # noqa: E402

WIDTH = 8192


def make_saved_model(folder: Path, gib: float) -> None:
    """Write the SavedModel into ``folder`` (in this process: run it as a child)."""
    import numpy as np
    import tensorflow as tf

    layers = math.ceil(gib * 2**30 / (WIDTH * WIDTH * 4))
    rng = np.random.default_rng(0)
    module = tf.Module()
    module.weights = []
    for _ in range(layers):
        values = rng.random((WIDTH, WIDTH), np.float32) * np.float32(2.0 / WIDTH)
        module.weights.append(tf.Variable(values, trainable=False))
        del values

    @tf.function(input_signature=[tf.TensorSpec([1, WIDTH], tf.float32, name="x")])
    def serve(x: tf.Tensor) -> dict[str, tf.Tensor]:
        for w in module.weights:
            x = tf.nn.relu(tf.matmul(x, w))
        return {"y": x}

    module.serve = serve
    tf.saved_model.save(module, str(folder), signatures={"serving_default": serve})


def tf2onnx_alone(folder: Path) -> None:
    """Convert ``folder`` with tf2onnx in its large-model form, as trtimport runs it (with its
    fixes to that form), and write nothing: what TensorFlow and tf2onnx hold."""
    from trtimport.importers.tensorflow.convert import Request, convert_saved_model

    converted = convert_saved_model(folder, Request(large_model=True))
    held = sum(len(b) for b in converted.external.values())
    print(f"tf2onnx: {len(converted.model.graph.initializer)} initializers, {held:,} B external")


def self_cmd(*args: str) -> list[str]:
    """This script in a fresh process."""
    return [sys.executable, str(Path(__file__).resolve()), *args]


def measure(folder: Path, gib: float, engine: bool, force_large: bool, tf2onnx: bool) -> list[str]:
    """Make the model, run every side once; returns the report's lines."""
    env = child_env(folder / "pycache")
    if force_large:
        env["TRTIMPORT_TF_LARGE_MODEL_BYTES"] = "0"
    saved = folder / "saved_model"
    if not saved.is_dir():
        subprocess.run(self_cmd("--make", str(saved), "--gib", str(gib)), env=env, check=True)
    variables = sum(f.stat().st_size for f in (saved / "variables").iterdir())
    out_onnx, out_engine = folder / "out.onnx", folder / "out.engine"
    sides = {
        "floor": (["cp", "-r", str(saved / "variables"), str(folder / "copy")], "cp -r variables"),
        "tf2onnx": (
            self_cmd("--tf2onnx", str(saved)),
            "convert_saved_model(SAVED, large_model=True)",
        ),
        "to-onnx": (
            trtimport_cmd(str(saved), "--save-onnx", str(out_onnx), "--no-engine", "-q"),
            "trtimport SAVED --save-onnx out.onnx --no-engine -q",
        ),
    }
    if not tf2onnx:
        del sides["tf2onnx"]
    if engine:
        bare_cmd = [sys.executable, str(HERE / "bare_build.py"), str(out_onnx)]
        sides["bare"] = ([*bare_cmd, str(folder / "bare.engine")], "bare_build.py out.onnx")
        sides["to-engine"] = (
            trtimport_cmd(str(saved), "-o", str(out_engine), "-q"),
            "trtimport SAVED -o out.engine -q",
        )
    lines = [
        f"SavedModel with {variables:,} bytes of variables ({variables / 2**30:.2f} GiB)",
        "",
        "| side | command | wall s | peak RSS MiB | RSS / variables |",
        "|---|---|---|---|---|",
    ]
    for name, (cmd, shown) in sides.items():
        wall, rss = run_once(cmd, env)
        print(f"  {name}: {wall:.1f} s, {rss / 2**20:,.0f} MiB", file=sys.stderr, flush=True)
        lines.append(
            f"| {name} | `{shown}` | {wall:.1f} | {rss / 2**20:,.0f} | {rss / variables:.2f} |"
        )
        if name == "floor":
            shutil.rmtree(folder / "copy")
    written = [p for p in folder.iterdir() if p.name.startswith("out.onnx")]
    lines += [
        "",
        "--save-onnx wrote: " + ", ".join(f"{p.name} ({p.stat().st_size:,} B)" for p in written),
    ]
    if engine:
        same = filecmp.cmp(folder / "bare.engine", out_engine, shallow=False)
        lines.append(f"engines byte-identical: {same}")
    return lines


def main() -> None:
    """Command line: the folder and the size; ``--make``/``--tf2onnx`` are the child sides."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--gib", type=float, default=2.25)
    parser.add_argument("--keep", action="store_true", help="keep the model and the outputs")
    parser.add_argument("--no-engine", action="store_true", help="skip the engine sides")
    parser.add_argument("--force-large", action="store_true", help="large-model form at any size")
    parser.add_argument("--no-tf2onnx", action="store_true", help="skip the tf2onnx side")
    parser.add_argument("--make", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--tf2onnx", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make:
        make_saved_model(args.folder, args.gib)
        return
    if args.tf2onnx:
        tf2onnx_alone(args.folder)
        return
    import tensorrt_rtx

    print(
        f"{time.strftime('%Y-%m-%d %H:%M')}; {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, tensorrt_rtx {tensorrt_rtx.__version__}; "
        f"load average {os.getloadavg()[0]:.1f}; one fresh process per side"
    )
    args.folder.mkdir(parents=True, exist_ok=True)
    try:
        print(
            "\n".join(
                measure(
                    args.folder, args.gib, not args.no_engine, args.force_large, not args.no_tf2onnx
                )
            )
        )
        print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")
    finally:
        if not args.keep:
            shutil.rmtree(args.folder, ignore_errors=True)


if __name__ == "__main__":
    main()
