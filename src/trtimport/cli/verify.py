"""``trtimport verify MODEL``: the source framework's runtime against trtimport's result."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from trtimport.cli.common import add_output_arguments, image_options
from trtimport.cli.runtime_args import add_model_and_input_arguments, input_files_and_options

HELP = "compare the source framework's runtime with the engine (GPU) or the model's ONNX (CPU)"

DESCRIPTION = """\
Compare the source framework's runtime (ONNX Runtime for ONNX, OpenCV for Caffe, TensorFlow for
TensorFlow) with the candidate on the same inputs: the engine on a GPU; on a CPU the intermediate
ONNX and the exported network ONNX on ONNX Runtime; or the ONNX file given with --candidate.

An element passes when |candidate - reference| <= atol + rtol * |reference| (numpy.allclose).
Exit code 1 when any output fails.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``verify``."""
    add_model_and_input_arguments(parser)
    g = parser.add_argument_group("comparison")
    g.add_argument(
        "--candidate",
        type=Path,
        metavar="FILE.onnx",
        help="compare the model against this ONNX of the same graph (edited, quantized …)",
    )
    g.add_argument("--atol", type=float, default=1e-4, help="absolute tolerance (default 1e-4)")
    g.add_argument("--rtol", type=float, default=1e-3, help="relative tolerance (default 1e-3)")
    g.add_argument(
        "--layerwise",
        action="store_true",
        help="compare every tensor both sides have and name the first layer that diverges",
    )
    add_output_arguments(parser)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def print_report(report: dict[str, Any]) -> None:
    """The comparison table of every candidate."""
    print(f"reference: {report['reference']}")
    for name, source in report["inputs"].items():
        print(f"  input {name} <- {source}")
    tol = report["tolerance"]
    print(
        f"pass: |candidate - reference| <= atol + rtol * |reference|  "
        f"(atol {tol['atol']:g}, rtol {tol['rtol']:g})"
    )
    for cand in report["candidates"]:
        print(f"\ncandidate: {cand['candidate']}")
        rows = [("output", "shape", "max abs", "max rel", "cosine", "mismatched", "result")]
        for c in cand["outputs"]:
            rows.append(
                (
                    c["name"],
                    "x".join(map(str, c["reference_shape"])) or "scalar",
                    _num(c["max_abs"]),
                    _num(c["max_rel"]),
                    "-" if c["cosine"] is None else f"{c['cosine']:.6f}",
                    f"{c['mismatched']}/{c['size']}",
                    "PASS" if c["passed"] else "FAIL",
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for row in rows:
            print("  " + "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
        for c in cand["outputs"]:
            if c["note"]:
                print(f"  {c['name']}: {c['note']}")
        if cand["layerwise"]:
            div = cand["first_divergence"]
            if div is None:
                print(f"  layerwise: the {cand['compared_tensors']} common tensor(s) agree")
            else:
                where = f" (layer {div['layer']}, {div['op']})" if div["layer"] is not None else ""
                comp = div["comparison"]
                print(
                    f"  layerwise: first divergence at tensor '{div['tensor']}'{where}, "
                    f"{div['index']} of {div['compared']} compared in topological order: "
                    f"max abs {_num(comp['max_abs'])}, cosine "
                    f"{'-' if comp['cosine'] is None else format(comp['cosine'], '.6f')}"
                )
        for note in cand["notes"]:
            print(f"  note: {note}")
    print(f"\nRESULT: {'PASS' if report['passed'] else 'FAIL'}")


def run(args: argparse.Namespace) -> int:
    """Run ``verify``; exit code 1 when verification fails."""
    from trtimport.cli.output import print_json
    from trtimport.verify.verify import verify_model

    files, options = input_files_and_options(args)
    report = verify_model(
        args.model,
        import_options=options,
        candidate=args.candidate,
        files=files,
        image_options=image_options(args),
        seed=args.seed,
        atol=args.atol,
        rtol=args.rtol,
        layerwise=args.layerwise,
        runtime=args.runtime,
        verbosity=args.verbose,
    )
    data = report.as_dict()
    if args.json:
        print_json(data)
    elif not args.quiet:
        for note in dict.fromkeys(report.notes):
            print(f"note: {note}", file=sys.stderr)
        print_report(data)
    if report.passed:
        return 0
    from trtimport.cli.output import print_error

    print_error(
        f"verification failed: outputs of {args.model} differ beyond --atol {args.atol} "
        f"--rtol {args.rtol}" + ("" if args.json or args.quiet else " (see the table)")
    )
    return 1
