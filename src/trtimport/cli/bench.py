"""``trtimport bench MODEL|ENGINE``: latency and throughput, reported the way trtexec does."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from trtimport.cli.common import add_output_arguments, image_options
from trtimport.cli.runtime_args import add_model_and_input_arguments, input_files_and_options
from trtimport.runtime import TRTEXEC_DEFAULTS

#: The settings ``--trtexec`` gives defaults for, and what each does.
SETTINGS = {
    "data_transfers": "time host-device copies",
    "cuda_graph": "capture each enqueue in a CUDA graph",
    "spin_wait": "poll events instead of blocking on them",
}

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
        "--trtexec",
        type=int,
        choices=(10, 11),
        default=11,
        help="start from trtexec 10's or 11's defaults for transfers, CUDA graphs and "
        "spin-wait (default 11)",
    )
    for setting, meaning in SETTINGS.items():
        defaults = ", ".join(
            f"{v}: {'yes' if TRTEXEC_DEFAULTS[v][setting] else 'no'}" for v in TRTEXEC_DEFAULTS
        )
        g.add_argument(
            "--" + setting.replace("_", "-"),
            action=argparse.BooleanOptionalAction,
            default=None,
            help=f"TensorRT: {meaning} (trtexec {defaults})",
        )
    g.add_argument(
        "--shared-scratch",
        action="store_true",
        help="TensorRT: one scratch buffer for all --streams contexts, which then never run "
        "at once (default: one each)",
    )
    g.add_argument(
        "--memory-pool",
        action="store_true",
        help="TensorRT: serve TensorRT's device allocations from a stream-ordered pool",
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
    if on_gpu:
        print(
            f"settings: trtexec {summary['trtexec']} defaults; data transfers "
            f"{_on(summary['data_transfers'])}, CUDA graph {_on(summary['cuda_graph'])}, "
            f"spin-wait {_on(summary['spin_wait'])}, {summary['streams']} stream(s), 2 queries "
            "in flight per stream"
        )
        memory = summary["memory"] or {}
        if memory.get("managed_by") == "trtimport":
            kind = "one shared buffer" if memory["shared"] else "one buffer per context"
            print(
                f"scratch: {kind}, {memory['bytes_each']} bytes each, "
                f"{memory['total_bytes']} bytes in all"
            )
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


def _on(flag: bool) -> str:
    return "on" if flag else "off"


def _runs_on_tensorrt(args: argparse.Namespace) -> bool:
    """Whether ``make_runner`` will open TensorRT (so trtexec's default CUDA graph applies)."""
    from trtimport.core.backend import get_backend
    from trtimport.errors import TrtImportError
    from trtimport.runners import is_engine_file

    if args.runtime == "tensorrt" or is_engine_file(Path(args.model)):
        return True
    if args.runtime == "onnxruntime":
        return False
    try:
        return get_backend().gpu_support_problem() is None
    except TrtImportError:
        return False


def run(args: argparse.Namespace) -> int:
    """Run ``bench``."""
    from trtimport.cli.output import print_json
    from trtimport.runners import make_runner
    from trtimport.runtime.bench import run_benchmark, trtexec_settings, write_export_times
    from trtimport.runtime.inputs import make_feeds
    from trtimport.runtime.tensorrt import TensorRTRunner

    files, options = input_files_and_options(args)
    settings = trtexec_settings(
        args.trtexec,
        data_transfers=args.data_transfers,
        cuda_graph=args.cuda_graph,
        spin_wait=args.spin_wait,
    )
    with make_runner(
        args.model,
        args.runtime,
        import_options=options,
        streams=args.streams,
        cuda_graph=settings["cuda_graph"] and _runs_on_tensorrt(args),
        shared_scratch=args.shared_scratch,
        memory_pool=args.memory_pool,
        verbosity=args.verbose,
    ) as runner:
        feeds = make_feeds(
            runner.inputs(), files, image_options(args), seed=args.seed, shapes=options.input_shapes
        )
        gpu = runner if isinstance(runner, TensorRTRunner) else None
        on_gpu = gpu is not None
        notes = list(dict.fromkeys([*runner.notes, *feeds.notes]))
        if gpu is not None:
            launcher = gpu.launcher(
                feeds.arrays, transfers=settings["data_transfers"], spin_wait=settings["spin_wait"]
            )
        else:
            if args.data_transfers is False:
                notes.append("--no-data-transfers: ONNX Runtime has no host-device copies to skip")
            launcher = runner.launcher(feeds.arrays)
        try:
            result = run_benchmark(
                launcher,
                runner=str(getattr(runner, "label", runner.name)),
                warmup_ms=args.warmup,
                iterations=args.iterations,
                duration_s=args.duration,
                streams=args.streams,
                cuda_graph=gpu is not None and gpu.cuda_graph,
                data_transfers=on_gpu and settings["data_transfers"],
                spin_wait=on_gpu and settings["spin_wait"],
                trtexec=args.trtexec,
                memory=gpu.memory() if gpu is not None else None,
            )
        finally:
            launcher.close()
        notes = list(dict.fromkeys([*notes, *runner.notes]))
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
