"""Why ONNX's backend node cases fail with the bare TensorRT parser, grouped by cause.

Builds every case exactly as ``tests/test_onnx_node_cases.py`` does for its bare path (the same
``--input`` shapes and ``--input-values``), with a logger that keeps TensorRT's ERROR and
WARNING messages, and prints the failures grouped by stage (parse, values, build) and TensorRT's
first error (numbers and quoted names blanked). Run from the repository root:
``PYTHONPATH=src:tests python tools/node_case_failures.py [--target sm86] [--json out.json]``.
Takes ~1-2 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import re
import sys
import tempfile
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from node_case_build import build_bare, dynamic_input_shapes, integer_input_values, silence_output
from onnx_node_cases import node_cases

Job = tuple[str, str, dict[str, tuple[int, ...]], dict[str, tuple[int, ...]], tuple[str, ...]]

_NODE_PREFIX = re.compile(r"^node \d+ \((.*?), (.*?)\): ")
_BLANKS = [
    (re.compile(r"\(Unnamed Layer\* \d+\) \[[^\]]*\]"), "<layer>"),
    (re.compile(r"'[^']*'|\"[^\"]*\""), "'…'"),
    (re.compile(r"node_of_\w+"), "node_of_…"),
    (re.compile(r"\d+"), "N"),
]


def _blank(message: str) -> str:
    for pattern, replacement in _BLANKS:
        message = pattern.sub(replacement, message)
    return " ".join(message.split())[:200]


def _cause(failed_at: str, parser_errors: tuple[str, ...], errors: list[str]) -> str:
    if failed_at == "parse" and parser_errors:
        first = parser_errors[0]
        match = _NODE_PREFIX.match(first)
        op = match.group(2) if match else "?"
        return f"parse [{op}] {_blank(first[match.end() if match else 0 :])}"
    if failed_at == "values":
        return "values: a shape-tensor input the case gives no int32/int64 values for"
    return f"{failed_at} {_blank(errors[0]) if errors else '(no error message)'}"


def diagnose(job: Job) -> dict[str, object]:
    """Build one case bare; its outcome, the cause of a failure, and TensorRT's messages."""
    from trtimport.build.trtlog import make_logger
    from trtimport.core.backend import get_backend

    name, path, shapes, values, targets = job
    logger = make_logger(get_backend("tensorrt_rtx"))
    result = build_bare(path, shapes, values, targets, logger)
    cause = "" if result.built else _cause(result.failed_at, result.parser_errors, logger.errors)
    return {
        "name": name,
        "built": result.built,
        "cause": cause,
        "parser_errors": list(result.parser_errors),
        "errors": list(logger.errors),
        "warnings": list(logger.warnings),
    }


def main(argv: list[str] | None = None) -> int:
    """Diagnose every case; print the failures grouped by cause."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", action="append", default=[], help="e.g. sm86 (repeatable)")
    parser.add_argument("--json", type=Path, help="also write every case's outcome here")
    args = parser.parse_args(argv)
    targets = tuple(args.target)
    with tempfile.TemporaryDirectory(prefix="node-cases-") as tmp:
        jobs: list[Job] = [
            (
                case.name,
                str(case.save(Path(tmp))),
                dynamic_input_shapes(case.model, case.inputs),
                integer_input_values(case.model, case.inputs),
                targets,
            )
            for case in node_cases()
        ]
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(2, mp_context=context, initializer=silence_output) as pool:
            outcomes = list(pool.map(diagnose, jobs, chunksize=8))
    groups: dict[str, list[str]] = defaultdict(list)
    for outcome in outcomes:
        if not outcome["built"]:
            groups[str(outcome["cause"])].append(str(outcome["name"]).removeprefix("test_"))
    for cause, names in sorted(groups.items(), key=lambda item: (-len(item[1]), item[0])):
        shown = " ".join(names[:6]) + (f" … ({len(names) - 6} more)" if len(names) > 6 else "")
        print(f"{len(names):4d}  {cause}\n      {shown}")
    built = sum(bool(o["built"]) for o in outcomes)
    print(f"built ({','.join(targets) or 'portable'}): {built} of {len(outcomes)}")
    if args.json:
        args.json.write_text(json.dumps(outcomes, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
