"""trtimport on a TensorFlow SavedModel vs tf2onnx's command line plus a bare TensorRT build.

Both sides start from the same SavedModel (MobileNetV2 or ResNet50 with random weights) and end
with a serialized engine built with the default builder config; each step runs in a fresh
Python process, the two sides take turns, and the median of several runs is compared:

    trtimport:  python -m trtimport SAVED_MODEL --input input:1xHxWx3 -o a.engine -q
    baseline:   python -m tf2onnx.convert --saved-model SAVED_MODEL --output b.onnx --opset 17
                python -c "<parse b.onnx with TensorRT's ONNX parser, build, write b.engine>"

Usage: python benchmarks/bench_tf.py [--model mobilenet_v2|resnet50] [--size 224] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: The bare build: what a user writes without trtimport (same defaults: no targets, no flags).
BARE_BUILD = """
import sys
import tensorrt_rtx as trt
logger = trt.Logger(trt.Logger.ERROR)
builder = trt.Builder(logger)
network = builder.create_network(0)
parser = trt.OnnxParser(network, logger)
if not parser.parse_from_file(sys.argv[1]):
    raise SystemExit("\\n".join(str(parser.get_error(i)) for i in range(parser.num_errors)))
network.get_input(0).shape = tuple(int(d) for d in sys.argv[3].split("x"))
config = builder.create_builder_config()
engine = builder.build_serialized_network(network, config)
with open(sys.argv[2], "wb") as f:
    f.write(engine)
"""


def make_saved_model(name: str, size: int, dest: Path) -> None:
    """Save a keras.applications model with random weights as a SavedModel (input ``input``)."""
    import keras
    import tensorflow as tf

    builders = {
        "mobilenet_v2": keras.applications.MobileNetV2,
        "resnet50": keras.applications.ResNet50,
    }
    keras.utils.set_random_seed(0)
    model = builders[name](input_shape=(size, size, 3), weights=None)
    spec = tf.TensorSpec([None, size, size, 3], tf.float32, name="input")
    module = tf.Module()
    module.weights = [v.value for v in model.variables]
    module.serve = tf.function(lambda x: {"output_0": model(x, training=False)}, [spec])
    concrete = module.serve.get_concrete_function()
    tf.saved_model.save(module, str(dest), signatures={"serving_default": concrete})


def timed(cmd: list[str], cwd: Path) -> float:
    """Run ``cmd`` in a fresh process; its wall time in seconds (a failure stops the bench)."""
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{result.stderr[-3000:]}")
    return seconds


def main() -> None:
    """Run the comparison and print the medians and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mobilenet_v2", choices=["mobilenet_v2", "resnet50"])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    py = sys.executable
    shape = f"1x{args.size}x{args.size}x3"
    with tempfile.TemporaryDirectory(prefix="bench-tf-") as tmp:
        work = Path(tmp)
        saved = work / "saved_model"
        make_saved_model(args.model, args.size, saved)
        ours_cmd = [py, "-m", "trtimport", str(saved), "--input", f"input:{shape}"]
        ours_cmd += ["-o", str(work / "a.engine"), "-q"]
        convert_cmd = [py, "-m", "tf2onnx.convert", "--saved-model", str(saved)]
        convert_cmd += ["--output", str(work / "b.onnx"), "--opset", "17"]
        build_cmd = [py, "-c", BARE_BUILD, str(work / "b.onnx"), str(work / "b.engine"), shape]
        ours: list[float] = []
        base: list[float] = []
        for i in range(args.repeat):
            ours.append(timed(ours_cmd, work))
            base.append(timed(convert_cmd, work) + timed(build_cmd, work))
            print(f"run {i + 1}: trtimport {ours[-1]:.2f} s, tf2onnx + bare build {base[-1]:.2f} s")
        mine, theirs = statistics.median(ours), statistics.median(base)
        print(f"model: {args.model} {args.size}x{args.size}, random weights, SavedModel")
        print(f"trtimport (median of {args.repeat}): {mine:.2f} s")
        print(f"tf2onnx CLI + bare tensorrt_rtx build (median of {args.repeat}): {theirs:.2f} s")
        print(f"ratio trtimport / baseline: {mine / theirs:.3f}")


if __name__ == "__main__":
    main()
