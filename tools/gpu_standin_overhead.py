"""trtimport's own per-query host overhead on a GPU, measured with the copying stand-in context.

Not a TensorRT measurement: the "engine" is tests/runtime/gpu_standin.py's stand-in, whose
enqueue queues two small device-to-device copies. It shows what trtimport's launcher adds per
query (enqueue time, host walltime per query) with and without CUDA graphs and transfers.
Usage: PYTHONPATH=src:tests/runtime python3 tools/gpu_standin_overhead.py [QUERIES]
"""

from __future__ import annotations

import json
import sys

import numpy as np
from gpu_standin import CopyingStandInContext, standin_io

from trtimport.runtime.bench import run_benchmark
from trtimport.runtime.gpu import Cuda, EngineSession, GpuLauncher, ScratchPlan


def main() -> None:
    """Print one JSON line per setting."""
    queries = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    cuda = Cuda()
    cuda(cuda.rt.cudaFree(0), "cudaFree(0)")
    x = np.zeros(1024, np.float32)
    for graph in (False, True):
        for transfers in (True, False):
            for spin in (False, True):
                contexts = [CopyingStandInContext(cuda)]
                session = EngineSession(
                    cuda,
                    standin_io(),
                    contexts,
                    label="stand-in",
                    scratch=ScratchPlan(1 << 20),
                    cuda_graph=graph,
                )
                launcher = GpuLauncher(session, {"x": x}, transfers=transfers, spin_wait=spin)
                result = run_benchmark(
                    launcher, runner="stand-in", warmup_ms=200, iterations=queries, duration_s=0
                )
                launcher.close()
                session.close()
                s = result.summary()
                print(
                    json.dumps(
                        {
                            "cuda_graph": graph,
                            "transfers": transfers,
                            "spin_wait": spin,
                            "queries": s["queries"],
                            "throughput_qps": s["throughput_qps"],
                            "enqueue_ms_median": s["enqueue_ms"]["median"],
                            "latency_ms_median": s["latency_ms"]["median"],
                            "compute_ms_median": s["compute_ms"]["median"],
                        }
                    )
                )


if __name__ == "__main__":
    main()
