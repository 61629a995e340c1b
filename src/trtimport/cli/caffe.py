"""``trtimport caffe …``: Caffe-specific tools (``make-weights``)."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "Caffe tools: make seeded random weights for a deploy prototxt"
DESCRIPTION = """\
Caffe tools.

  trtimport caffe make-weights deploy.prototxt -o model.caffemodel [--seed 0] [--json]
                              [--input NAME:SHAPE]
      write a caffemodel with seeded random weights for every layer of the deploy net that
      has weights (to try a structure without trained weights, or for tests); --input gives
      an input's shape where the prototxt has none or another one
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Subcommands of ``caffe``."""
    sub = parser.add_subparsers(dest="caffe_command", metavar="TOOL", required=True)
    make = sub.add_parser(
        "make-weights",
        help="write seeded random weights for a deploy prototxt as a caffemodel",
        description="Write a caffemodel with seeded random weights for a deploy prototxt.",
        formatter_class=parser.formatter_class,
    )
    make.add_argument("prototxt", type=Path, help="the deploy prototxt")
    make.add_argument("-o", "--output", type=Path, required=True, help="the caffemodel to write")
    make.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    make.add_argument("--json", action="store_true", help="print what was written as JSON")
    make.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="NAME:SHAPE",
        help="an input's shape, e.g. data:1x3x224x224 (repeatable), as for conversion",
    )


def run(args: argparse.Namespace) -> int:
    """Run ``caffe make-weights``."""
    from trtimport.cli.output import human_bytes, print_json
    from trtimport.core.options import parse_input_spec
    from trtimport.importers.caffe.make_weights import make_caffe_weights

    shapes = dict(parse_input_spec(spec) for spec in args.input)
    made = make_caffe_weights(args.prototxt, args.output, seed=args.seed, input_shapes=shapes)
    blobs = sum(len(shapes) for shapes in made.blobs.values())
    if args.json:
        print_json(
            {
                "caffemodel": str(made.path),
                "prototxt": str(args.prototxt),
                "seed": made.seed,
                "bytes": made.bytes_written,
                "layers": {name: [list(s) for s in shapes] for name, shapes in made.blobs.items()},
            }
        )
        return 0
    print(
        f"wrote {made.path} ({human_bytes(made.bytes_written)}): {blobs} random weight blobs "
        f"for {len(made.blobs)} layers of {args.prototxt}, seed {made.seed}"
    )
    return 0
