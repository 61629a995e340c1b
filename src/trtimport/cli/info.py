"""``trtimport info``: backend, versions, GPUs and capabilities."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

HELP = "show the TensorRT backend, versions, GPUs and what they can do (or an engine's needs)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``info``."""
    parser.add_argument(
        "engine",
        nargs="?",
        type=Path,
        metavar="ENGINE",
        help="an engine built by trtimport: show its I/O, device memory and weight sizes",
    )
    parser.add_argument("--json", action="store_true", help="print the facts as JSON")


def collect() -> dict[str, Any]:
    """Every fact ``info`` prints."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    from trtimport import __version__
    from trtimport.core.backend import available_backends, get_backend, probe_gpus
    from trtimport.errors import TrtImportError

    def pkg(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    facts: dict[str, Any] = {
        "trtimport": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "installed_backends": available_backends(),
        "packages": {
            n: pkg(n)
            for n in (
                "onnx",
                "onnxruntime",
                "numpy",
                "protobuf",
                "tensorflow-cpu",
                "tensorflow",
                "tf2onnx",
                "opencv-python-headless",
                "cuda-python",
            )
        },
    }
    gpus, problem = probe_gpus()
    facts["gpus"] = [
        {
            "index": g.index,
            "name": g.name,
            "compute_capability": g.sm,
            "memory_bytes": g.memory_bytes,
        }
        for g in gpus
    ]
    facts["gpu_problem"] = problem
    try:
        be = get_backend()
    except TrtImportError as err:
        facts["backend"] = None
        facts["backend_error"] = str(err)
        return facts
    facts["backend"] = {
        "name": be.name,
        "version": be.version,
        "onnx_parser": be.onnx_parser_version,
        "capabilities": {
            "precision_flags": be.has_precision_flags,
            "strongly_typed_only": be.strongly_typed_only,
            "targets": be.supports_targets,
            "refit": be.supports_refit,
            "strip_plan": be.supports_strip_plan,
            "progress_monitor": be.supports_progress_monitor,
            "builder_threads": be.supports_builder_threads,
            "cache": be.cache_kind,
            "can_run_engines": be.gpu_support_problem() is None,
        },
        "run_problem": be.gpu_support_problem(),
    }
    return facts


def print_engine(facts: dict[str, Any]) -> None:
    """The human form of ``info ENGINE``."""
    built = facts["built_with"] or {}
    print(
        f"{facts['engine']}: {facts['bytes']} bytes, built with {built.get('name')} "
        f"{built.get('version')}"
    )
    for kind in ("inputs", "outputs"):
        for t in facts[kind] or []:
            shape = "x".join(str(d) for d in t["shape"])
            print(f"  {kind[:-1]} {t['name']}  {shape}  {t['dtype']}")
    memory = facts["memory"]
    if memory is None:
        print(f"  memory: unknown ({facts['memory_problem']})")
        return
    print(f"  device memory (scratch, largest profile): {memory['device_memory_bytes']} bytes")
    weights = memory["weights_bytes"]
    shown = "unknown (this backend has no engine stats)" if weights is None else f"{weights} bytes"
    print(f"  weights: {shown}; streamable: {memory['streamable_weights_bytes']} bytes")
    for profile in memory["profiles"]:
        print(f"  profile {profile['index']}: {profile['device_memory_bytes']} bytes of scratch")
        for name, r in profile["shapes"].items():
            print(f"    {name}: min {r['min']} opt {r['opt']} max {r['max']}")


def run(args: argparse.Namespace) -> int:
    """Run ``info``."""
    if args.engine is not None:
        from trtimport.cli.output import print_json
        from trtimport.runtime.engine_info import engine_facts

        engine = engine_facts(args.engine, verbosity=getattr(args, "verbose", 0))
        if args.json:
            print_json(engine)
        else:
            print_engine(engine)
        return 0
    facts = collect()
    if args.json:
        from trtimport.cli.output import print_json

        print_json(facts)
        return 0
    print(f"trtimport {facts['trtimport']} on Python {facts['python']} ({facts['platform']})")
    be = facts["backend"]
    if be is None:
        print(f"backend: none ({facts['backend_error']})")
    else:
        print(f"backend: {be['name']} {be['version']} (ONNX parser {be['onnx_parser']})")
        for key, value in be["capabilities"].items():
            print(f"  {key}: {value}")
        if be["run_problem"]:
            print(f"  engines cannot run here: {be['run_problem']}")
    print(f"installed backends: {', '.join(facts['installed_backends']) or 'none'}")
    if facts["gpus"]:
        for g in facts["gpus"]:
            print(f"GPU {g['index']}: {g['name']} ({g['compute_capability']})")
    else:
        print(f"GPUs: none ({facts['gpu_problem']})")
    for name, ver in facts["packages"].items():
        if ver:
            print(f"  {name} {ver}")
    return 0
