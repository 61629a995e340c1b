"""What trtimport's ONNX Runtime runner and bench loop add on top of plain onnxruntime.

Side by side in one process, on the same model and input: a bare ``session.run`` loop
(the baseline), ``OnnxRuntimeRunner.infer`` in a loop, and ``run_benchmark`` with the host
launcher. Prints the median per-query time of each and the ratios to the baseline.

    PYTHONPATH=src:tests python benchmarks/runner_overhead.py [--queries N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    """Run the comparison and print the table."""
    import onnxruntime as ort
    from runtime_models import make_cnn

    from trtimport.runtime.bench import run_benchmark
    from trtimport.runtime.onnxruntime import OnnxRuntimeRunner

    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = make_cnn(Path(tmp) / "cnn.onnx")
        x = np.random.default_rng(0).random((1, 1, 28, 28)).astype(np.float32)
        session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        runner = OnnxRuntimeRunner(model)

        def timed(call: object) -> float:
            times = []
            for _ in range(args.queries):
                start = time.perf_counter()
                call()  # type: ignore[operator]
                times.append((time.perf_counter() - start) * 1000)
            return statistics.median(times)

        for _ in range(200):  # warm both up
            session.run(["prob"], {"x": x})
            runner.infer({"x": x})
        rows = []
        for _ in range(3):  # interleave rounds so drift hits every variant alike
            rows.append(
                (
                    timed(lambda: session.run(["prob"], {"x": x})),
                    timed(lambda: runner.infer({"x": x})),
                    run_benchmark(
                        runner.launcher({"x": x}),
                        runner="ort",
                        warmup_ms=0,
                        iterations=args.queries,
                        duration_s=0,
                    )
                    .stats("latency")
                    .median,  # type: ignore[union-attr]
                )
            )
        runner.close()
    base, infer, bench = (statistics.median(col) for col in zip(*rows, strict=True))
    print(f"onnxruntime {ort.__version__}, {args.queries} queries x 3 rounds, median ms/query")
    print(f"  session.run (baseline)      {base:.4f} ms  1.00x")
    print(f"  OnnxRuntimeRunner.infer     {infer:.4f} ms  {infer / base:.2f}x")
    print(f"  bench latency (host timer)  {bench:.4f} ms  {bench / base:.2f}x")


if __name__ == "__main__":
    main()
