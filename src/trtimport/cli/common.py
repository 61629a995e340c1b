"""Arguments shared by commands that import a model or build an engine."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from trtimport.core.choices import CALIB_METHODS, DEFAULT_CALIB_METHOD
from trtimport.errors import UsageError

if TYPE_CHECKING:
    from trtimport.core.importer_options import ImporterOptions
    from trtimport.core.options import BuildOptions, ImageOptions, ImportOptions, PrecisionOptions


def add_import_arguments(parser: argparse.ArgumentParser, *, input_files: bool = False) -> None:
    """MODEL and the flags that control importing it.

    ``input_files``: ``--input`` also takes ``NAME=FILE`` (data to run the model on).
    """
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
        metavar="NAME=FILE|NAME:SHAPE" if input_files else "NAME:SHAPE",
        help=(
            "data for an input (.npy, .npz or an image), e.g. data=digit.png, or an input's "
            "shape, e.g. data:1x3x224x224 (repeatable)"
            if input_files
            else "fix an input's shape, e.g. data:1x3x224x224 (repeatable)"
        ),
    )
    g.add_argument(
        "--shapes",
        action="append",
        default=[],
        metavar="NAME:MIN/OPT/MAX",
        help="shape range of a dynamic input for the first profile; for a shape-tensor input, "
        "the range of its values, e.g. shape:1x2/4x8/8x16 (repeatable)",
    )
    g.add_argument(
        "--input-values",
        action="append",
        default=[],
        metavar="NAME:V1,V2,…",
        help="fixed values of an input: a shape-tensor input's values in every profile "
        "(e.g. shape:2,-1), or, for an ONNX-based model, any input folded in as a constant "
        "(e.g. sr:16000) (repeatable)",
    )
    g.add_argument(
        "--profile",
        action="append",
        default=[],
        metavar="'NAME:MIN/OPT/MAX …'",
        help="one more optimization profile; repeat for several",
    )
    g.add_argument(
        "--batch",
        action="append",
        default=[],
        metavar="MIN/OPT/MAX",
        help="make an ONNX-based model's batch dimension dynamic with this range; repeat for "
        "one more optimization profile per range (not with --shapes/--profile)",
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
        help="TensorFlow, UFF: transpose this NHWC input to NCHW in the ONNX model (repeatable)",
    )
    g.add_argument(
        "--no-rewrite",
        action="store_true",
        help="when TensorRT refuses an ONNX-based graph, do not rewrite it (constant folding, "
        "standard ops for ONNX Runtime's contrib ops) and try again",
    )
    add_precision_arguments(parser)


def add_precision_arguments(parser: argparse.ArgumentParser) -> None:
    """--precision, --int8 and the calibration flags."""
    g = parser.add_argument_group("precision")
    g.add_argument(
        "--precision",
        choices=("fp32", "fp16", "bf16"),
        default="fp32",
        help="compute type of the network, written into the ONNX graph (sensitive ops and the "
        "model's inputs/outputs stay fp32; default fp32)",
    )
    g.add_argument(
        "--int8",
        action="store_true",
        help="quantize Conv/Gemm/MatMul layers to INT8 (Q/DQ) with calibrated ranges",
    )
    g.add_argument(
        "--calib-data",
        type=Path,
        metavar="DIR|FILE.npz",
        help="calibration data: .npz keyed by input name (samples along axis 0) or a folder "
        "of images (preprocessed with the image flags)",
    )
    g.add_argument(
        "--calib-batches", type=int, metavar="N", help="use at most N calibration batches"
    )
    g.add_argument(
        "--calib-method",
        choices=CALIB_METHODS,
        default=DEFAULT_CALIB_METHOD,
        help=f"how activation ranges are chosen (default {DEFAULT_CALIB_METHOD}; the network's "
        "inputs always get the largest value seen unless --calib-clip-inputs)",
    )
    g.add_argument(
        "--calib-percentile",
        type=float,
        default=99.99,
        metavar="P",
        help="percentile for --calib-method percentile (default 99.99)",
    )
    g.add_argument(
        "--calib-cache",
        type=Path,
        metavar="FILE",
        help="activation ranges JSON, reused when model and method match "
        "(default: ENGINE.calib.json beside the engine), or a TensorRT calibration cache "
        "(TRT-<version>-EntropyCalibration2 / MinMaxCalibration text), read only",
    )
    g.add_argument(
        "--calib-clip-inputs",
        action="store_true",
        help="let the calibration method clip the network's inputs too (default: their "
        "range covers every calibration value)",
    )
    g.add_argument(
        "--keep-fp32",
        action="append",
        default=[],
        metavar="NAME",
        help="keep this node (or the node writing this tensor) in fp32: not quantized, not "
        "lowered; globs such as 'conv5*' allowed (repeatable)",
    )
    g.add_argument(
        "--max-error",
        type=float,
        metavar="E",
        help="keep the most harmful layers in fp32 until max|out - fp32| / max|fp32| <= E for "
        "every output, measured with ONNX Runtime on --calib-data (or seeded random inputs)",
    )


def add_image_arguments(parser: argparse.ArgumentParser) -> None:
    """How images become input tensors (see :mod:`trtimport.runtime.preprocess`)."""
    g = parser.add_argument_group("images")
    g.add_argument("--resize", metavar="HxW", help="resize images (default: the input's size)")
    g.add_argument(
        "--scale", type=float, default=1.0, help="multiply pixels by this, e.g. 0.00390625"
    )
    g.add_argument("--mean", metavar="M[,M…]", help="subtract per channel, after --scale")
    g.add_argument("--std", metavar="S[,S…]", help="divide per channel, after --mean")
    g.add_argument(
        "--channel-order",
        choices=("rgb", "bgr", "gray"),
        help="channel order (default: gray for 1 channel, else bgr as Caffe and OpenCV)",
    )
    g.add_argument("--layout", choices=("nchw", "nhwc"), default="nchw", help="default nchw")


def image_options(args: argparse.Namespace) -> ImageOptions:
    """ImageOptions from parsed arguments (defaults if the command has no image flags)."""
    from trtimport.runtime.preprocess import ImageOptions, parse_floats, parse_resize

    if not hasattr(args, "scale"):
        return ImageOptions()
    return ImageOptions(
        resize=parse_resize(args.resize) if args.resize else None,
        scale=args.scale,
        mean=parse_floats(args.mean, "--mean") if args.mean else (0.0,),
        std=parse_floats(args.std, "--std") if args.std else (1.0,),
        channel_order=args.channel_order,
        layout=args.layout,
    )


def precision_options(args: argparse.Namespace) -> PrecisionOptions:
    """PrecisionOptions from parsed arguments."""
    from trtimport.core.options import PrecisionOptions

    if not args.int8:
        given = [
            flag
            for flag, value in (
                ("--calib-data", None if args.max_error is not None else args.calib_data),
                ("--calib-batches", None if args.max_error is not None else args.calib_batches),
                ("--calib-cache", args.calib_cache),
                ("--calib-clip-inputs", args.calib_clip_inputs or None),
            )
            if value is not None
        ]
        if given:
            raise UsageError(
                f"{', '.join(given)} only apply with --int8 (--calib-data and --calib-batches "
                "also with --max-error)"
            )
    return PrecisionOptions(
        precision=args.precision,
        int8=args.int8,
        calib_data=args.calib_data,
        calib_batches=args.calib_batches,
        calib_method=args.calib_method,
        calib_percentile=args.calib_percentile,
        calib_cache=args.calib_cache,
        image=image_options(args) if args.int8 or args.max_error is not None else None,
        calib_clip_inputs=args.calib_clip_inputs,
        keep_fp32=tuple(args.keep_fp32),
        max_error=args.max_error,
    )


def import_options(args: argparse.Namespace) -> ImportOptions:
    """ImportOptions from parsed arguments."""
    from trtimport.core.options import (
        ImportOptions,
        parse_batch,
        parse_input_spec,
        parse_input_values_spec,
        parse_profile,
        parse_shapes_spec,
    )

    profiles = []
    if args.shapes:
        profiles.append(dict(parse_shapes_spec(s) for s in args.shapes))
    profiles += [parse_profile([p]) for p in args.profile]
    batches = [parse_batch(b) for b in args.batch]
    return ImportOptions(
        weights=args.weights,
        format=args.format,
        input_shapes=dict(parse_input_spec(s) for s in args.input),
        profiles=profiles,
        input_values=dict(parse_input_values_spec(s) for s in args.input_values),
        outputs=list(args.output),
        opset=args.opset,
        batch=batches[0] if batches else None,
        more_batches=batches[1:],
        precision=precision_options(args),
        importer_options=_importer_options(args),
        rewrite=not getattr(args, "no_rewrite", False),
    )


def _importer_options(args: argparse.Namespace) -> dict[str, ImporterOptions]:
    """The importers' own options from their flags (only those given)."""
    from trtimport.importers.tensorflow.options import TensorFlowOptions

    names = [n for spec in getattr(args, "inputs_as_nchw", []) for n in spec.split(",") if n]
    if not names:
        return {}
    return {TensorFlowOptions.key: TensorFlowOptions(inputs_as_nchw=tuple(names))}


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
    g.add_argument(
        "--builder-threads",
        type=int,
        metavar="N",
        help="threads the builder may use (default: every CPU; 1 is TensorRT's own default). "
        "The engine is the same",
    )


def build_options(args: argparse.Namespace, progress: bool) -> BuildOptions:
    """BuildOptions from parsed arguments (their numbers checked by
    :func:`trtimport.cli.guard.check_numbers`)."""
    from trtimport.core.options import BuildOptions, parse_size

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
        builder_threads=args.builder_threads,
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
