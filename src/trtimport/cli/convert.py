"""``trtimport [convert] MODEL``: import a model and build a TensorRT engine."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from trtimport.cli.common import (
    add_build_arguments,
    add_image_arguments,
    add_import_arguments,
    add_output_arguments,
    build_options,
    import_options,
)

HELP = "import a model and build a TensorRT engine (the default command)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``convert``."""
    add_import_arguments(parser)
    g = parser.add_argument_group("files")
    g.add_argument(
        "-o",
        "--engine",
        type=Path,
        metavar="OUT.engine",
        help="engine file to write (default: ./MODEL-STEM.engine)",
    )
    g.add_argument(
        "--save-onnx",
        type=Path,
        metavar="OUT.onnx",
        help="also keep the ONNX model the network was parsed from",
    )
    g.add_argument(
        "--save-network-onnx",
        type=Path,
        metavar="OUT.onnx",
        help="also write the TensorRT network itself as ONNX (layer names kept; open in Netron)",
    )
    g.add_argument(
        "--no-engine", action="store_true", help="import (and save ONNX) but do not build an engine"
    )
    add_build_arguments(parser)
    add_image_arguments(parser)
    add_output_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Run ``convert``."""
    from trtimport.cli.output import human_bytes, print_json, print_warning
    from trtimport.cli.progress import TerminalProgress
    from trtimport.pipeline import convert
    from trtimport.plugins.manager import load_plugins

    plugins = load_plugins()
    for error in plugins.load_errors:
        print_warning(str(error))
    result = convert(
        args.model,
        args.engine,
        import_options=import_options(args),
        build_options=build_options(args, progress=not (args.quiet or args.json)),
        save_onnx_to=args.save_onnx,
        save_network_onnx_to=args.save_network_onnx,
        build=not args.no_engine,
        plugins=plugins,
        verbosity=args.verbose,
        progress=TerminalProgress(draw=not (args.quiet or args.json)),
    )
    if args.json:
        print_json(result.to_dict())
        return 0
    if args.quiet:
        return 0
    for note in result.notes:
        print(note, file=sys.stderr)
    print(f"{result.model} ({result.format}) -> {result.backend} {result.backend_version}")
    for label, tensors in (("inputs", result.inputs), ("outputs", result.outputs)):
        print(f"  {label}:")
        for t in tensors:
            print(f"    {t.name}  {'x'.join(map(str, t.shape)) or 'scalar'}  {t.dtype}")
    print(f"  layers: {result.layers}")
    if result.engine is not None:
        print(f"  targets: {', '.join(result.targets)}")
        print(f"  build time: {result.build_seconds:.2f} s")
        print(f"  engine size: {human_bytes(result.engine_bytes)}")
    print("  files written:" + ("" if result.files_written else " none"))
    for path in result.files_written:
        print(f"    {path}")
    return 0
