"""Arguments shared by commands that import a model or build an engine."""

from __future__ import annotations

import argparse
from pathlib import Path

from trtimport.core.options import (
    BuildOptions,
    ImportOptions,
    parse_batch,
    parse_input_spec,
    parse_profile,
    parse_shapes_spec,
    parse_size,
)


def add_import_arguments(parser: argparse.ArgumentParser) -> None:
    """MODEL and the flags that control importing it."""
    parser.add_argument("model", type=Path, metavar="MODEL", help="model file or folder")
    g = parser.add_argument_group("import")
    g.add_argument(
        "--weights",
        type=Path,
        metavar="FILE",
        help="weights file (Caffe .caffemodel, network-script weights)",
    )
    g.add_argument(
        "--format",
        metavar="NAME",
        help="model format (default: detected); `trtimport formats` lists them",
    )
    g.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="NAME:SHAPE",
        help="fix an input's shape, e.g. data:1x3x224x224 (repeatable)",
    )
    g.add_argument(
        "--shapes",
        action="append",
        default=[],
        metavar="NAME:MIN/OPT/MAX",
        help="shape range of a dynamic input for the first profile (repeatable)",
    )
    g.add_argument(
        "--profile",
        action="append",
        default=[],
        metavar="'NAME:MIN/OPT/MAX …'",
        help="one more optimization profile; repeat for several",
    )
    g.add_argument(
        "--batch", metavar="MIN/OPT/MAX", help="make the batch dimension dynamic with this range"
    )
    g.add_argument(
        "--output",
        action="append",
        default=[],
        metavar="NAME",
        help="mark this tensor as an output instead of the model's (repeatable)",
    )
    g.add_argument(
        "--opset",
        type=int,
        metavar="N",
        help="ONNX opset for formats converted to ONNX (default 17)",
    )
    g.add_argument(
        "--inputs-as-nchw",
        action="append",
        default=[],
        metavar="NAME",
        help="TensorFlow: transpose this NHWC input to NCHW in the ONNX model (repeatable)",
    )


def import_options(args: argparse.Namespace) -> ImportOptions:
    """ImportOptions from parsed arguments."""
    profiles = []
    if args.shapes:
        profiles.append(dict(parse_shapes_spec(s) for s in args.shapes))
    profiles += [parse_profile([p]) for p in args.profile]
    return ImportOptions(
        weights=args.weights,
        format=args.format,
        input_shapes=dict(parse_input_spec(s) for s in args.input),
        profiles=profiles,
        outputs=list(args.output),
        opset=args.opset,
        batch=parse_batch(args.batch) if args.batch else None,
        extra=_extra(args),
    )


def _extra(args: argparse.Namespace) -> dict[str, object]:
    names = [n for spec in getattr(args, "inputs_as_nchw", []) for n in spec.split(",") if n]
    return {"inputs_as_nchw": names} if names else {}


def add_build_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags that control building the engine."""
    g = parser.add_argument_group("build")
    g.add_argument("--workspace", metavar="SIZE", help="workspace memory pool limit, e.g. 2G")
    g.add_argument("--opt-level", type=int, metavar="0-5", help="builder optimization level")
    g.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="SM",
        help="TensorRT-RTX compute capabilities, e.g. sm86,sm89 (default: portable)",
    )
    g.add_argument("--refittable", action="store_true", help="build a refittable engine")
    g.add_argument(
        "--strip-weights", action="store_true", help="leave refittable weights out of the plan"
    )
    g.add_argument(
        "--cache",
        type=Path,
        metavar="FILE",
        help="timing cache (TensorRT) / runtime cache (TensorRT-RTX) file",
    )
    g.add_argument(
        "--profiling-verbosity", metavar="LEVEL", help="none, layer_names_only or detailed"
    )


def build_options(args: argparse.Namespace, progress: bool) -> BuildOptions:
    """BuildOptions from parsed arguments."""
    targets = [t for spec in args.target for t in spec.split(",") if t.strip()]
    return BuildOptions(
        workspace=parse_size(args.workspace) if args.workspace else None,
        optimization_level=args.opt_level,
        targets=targets,
        refittable=args.refittable,
        strip_weights=args.strip_weights,
        cache=args.cache,
        profiling_verbosity=args.profiling_verbosity,
        progress=progress,
    )


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """--json, -v, -q."""
    g = parser.add_argument_group("output")
    g.add_argument("--json", action="store_true", help="print the result as JSON")
    g.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="show TensorRT's warnings (-vv: info, -vvv: verbose)",
    )
    g.add_argument("-q", "--quiet", action="store_true", help="print only errors")
