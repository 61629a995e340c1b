"""``trtimport refit ENGINE --weights NEW``: swap new weights into a refittable engine."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from trtimport.cli.common import add_output_arguments

HELP = "refit a refittable engine with new weights (ONNX, .npz, or the source format's weights)"

DESCRIPTION = """\
Refit an engine built with --refittable. The new weights are matched to the engine's by name
(ONNX initializer names; for a .caffemodel, the source prototxt is imported again with it) and
every missing, unknown or mismatched weight is listed before the engine is touched. Refitting
itself needs a GPU. The engine is rewritten atomically (or written to -o).
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``refit``."""
    parser.add_argument(
        "engine", type=Path, metavar="ENGINE", help="engine built with --refittable"
    )
    parser.add_argument(
        "--weights",
        type=Path,
        required=True,
        metavar="NEW",
        help="new weights: .onnx, .npz (arrays by weight name) or e.g. a .caffemodel",
    )
    parser.add_argument(
        "-o", "--output", type=Path, metavar="OUT.engine", help="write here instead of in place"
    )
    parser.add_argument(
        "--model",
        type=Path,
        metavar="SOURCE",
        help="the engine's source model, if it moved since the build (default: from the sidecar)",
    )
    add_output_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Run ``refit``."""
    from trtimport.cli.output import print_json
    from trtimport.refit import plan_refit, refit_engine

    with plan_refit(args.engine, args.weights, model=args.model) as plan:
        if not args.quiet and not args.json:
            print(
                f"mapping checked: {len(plan.provided)} weight(s) from {args.weights} fit "
                f"{args.engine} ({len(plan.expected)} refittable weights)",
                file=sys.stderr,
            )
        dest = refit_engine(plan, args.output, verbosity=args.verbose)
        summary = plan.as_dict() | {"written": str(dest)}
    if args.json:
        print_json(summary)
    elif not args.quiet:
        print(f"refitted {args.engine} -> {dest}")
    return 0
