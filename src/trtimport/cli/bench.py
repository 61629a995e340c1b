"""``trtimport bench MODEL|ENGINE``: latency and throughput, reported the way trtexec does."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from trtimport.cli.common import add_output_arguments, image_options
from trtimport.cli.runtime_args import add_model_and_input_arguments, input_files_and_options

HELP = "measure latency and throughput (trtexec's statistics and --exportTimes records)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``bench``."""
    add_model_and_input_arguments(parser)
    g = parser.add_argument_group("benchmark")
    g.add_argument(
        "--warmup", type=float, default=200.0, metavar="MS", help="warm up for MS ms (default 200)"
    )
    g.add_argument(
        "--iterations", type=int, default=10, metavar="N", help="time at least N queries (10)"
    )
    g.add_argument(
        "--duration", type=float, default=3.0, metavar="S", help="time for at least S seconds (3)"
    )
    g.add_argument(
        "--streams", type=int, default=1, metavar="N", help="TensorRT: N contexts on N streams"
    )
    g.add_argument(
        "--cuda-graph", action="store_true", help="TensorRT: capture each enqueue in a CUDA graph"
    )
    g.add_argument(
        "--no-data-transfers",
        action="store_true",
        help="TensorRT: leave out host-device copies (time compute only)",
    )
    g.add_argument(
        "--export-times",
        type=Path,
        metavar="FILE",
        help="write per-query times as JSON with trtexec's --exportTimes field names",
    )
    add_output_arguments(parser)


def perf_line(stats: dict[str, float] | None, why_missing: str) -> str:
    """trtexec's ``min = … ms, max = … ms, …, percentile(99%) = … ms`` line."""
    if stats is None:
        return f"n/a ({why_missing})"
    return (
        f"min = {stats['min']:.6g} ms, max = {stats['max']:.6g} ms, mean = {stats['mean']:.6g} ms, "
        f"median = {stats['median']:.6g} ms, percentile(90%) = {stats['p90']:.6g} ms, "
        f"percentile(95%) = {stats['p95']:.6g} ms, percentile(99%) = {stats['p99']:.6g} ms"
    )


def print_summary(summary: dict[str, Any], on_gpu: bool) -> None:
    """The human summary, with trtexec's line names."""
    transfers = "no transfers: runs on the host" if not on_gpu else "--no-data-transfers"
    print(f"runner: {summary['runner']}")
    print(
        f"Warmup completed {summary['warmup_queries']} queries over {summary['warmup_ms']:.6g} ms"
    )
    print(f"Timing trace has {summary['queries']} queries over {summary['walltime_s']:.6g} s")
    print(f"Throughput: {summary['throughput_qps']:.6g} qps")
    print(f"Latency: {perf_line(summary['latency_ms'], '')}")
    print(f"Enqueue Time: {perf_line(summary['enqueue_ms'], '')}")
    print(f"H2D Latency: {perf_line(summary['h2d_ms'], transfers)}")
    compute_name = "GPU Compute Time" if on_gpu else "Compute Time (host, onnxruntime run call)"
    print(f"{compute_name}: {perf_line(summary['compute_ms'], '')}")
    print(f"D2H Latency: {perf_line(summary['d2h_ms'], transfers)}")
    print(f"Total Host Walltime: {summary['walltime_s']:.6g} s")
    total = "Total GPU Compute Time" if on_gpu else "Total Compute Time"
    print(f"{total}: {summary['total_compute_s']:.6g} s")


def run(args: argparse.Namespace) -> int:
    """Run ``bench``."""
    from trtimport.cli.output import print_json
    from trtimport.runners import make_runner
    from trtimport.runtime.bench import run_benchmark, write_export_times
    from trtimport.runtime.inputs import make_feeds

    files, options = input_files_and_options(args)
    with make_runner(
        args.model,
        args.runtime,
        import_options=options,
        streams=args.streams,
        cuda_graph=args.cuda_graph,
        verbosity=args.verbose,
    ) as runner:
        feeds = make_feeds(
            runner.inputs(), files, image_options(args), seed=args.seed, shapes=options.input_shapes
        )
        on_gpu = runner.name == "tensorrt"
        notes = list(dict.fromkeys([*runner.notes, *feeds.notes]))
        if args.no_data_transfers and not on_gpu:
            notes.append("--no-data-transfers: ONNX Runtime has no host-device copies to skip")
        launcher = runner.launcher(feeds.arrays, transfers=not args.no_data_transfers)
        try:
            result = run_benchmark(
                launcher,
                runner=str(getattr(runner, "label", runner.name)),
                warmup_ms=args.warmup,
                iterations=args.iterations,
                duration_s=args.duration,
                streams=args.streams,
                cuda_graph=args.cuda_graph,
                data_transfers=on_gpu and not args.no_data_transfers,
            )
        finally:
            launcher.close()
    if args.export_times is not None:
        write_export_times(result, args.export_times)
    summary = result.summary() | {"notes": notes}
    if args.export_times is not None:
        summary["export_times"] = str(args.export_times)
    if args.json:
        print_json(summary)
        return 0
    if args.quiet:
        return 0
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    print_summary(summary, on_gpu)
    if args.export_times is not None:
        print(f"per-query times written to {args.export_times}")
    return 0
