"""Flags shared by ``run``, ``bench`` and ``verify``: input data, preprocessing, runner choice."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from trtimport.cli.common import add_image_arguments, add_import_arguments, import_options
from trtimport.errors import UsageError
from trtimport.runtime import RUNTIMES

if TYPE_CHECKING:
    from trtimport.core.options import ImportOptions


def add_model_and_input_arguments(parser: argparse.ArgumentParser, *, runtime: bool = True) -> None:
    """MODEL, the import flags, ``--input NAME=FILE``, image preprocessing and ``--seed``."""
    add_import_arguments(parser, input_files=True)
    add_image_arguments(parser)
    g = parser.add_argument_group("input data")
    g.add_argument(
        "--seed", type=int, default=0, metavar="N", help="seed for generated inputs (default 0)"
    )
    if runtime:
        parser.add_argument(
            "--runtime",
            "--backend",
            dest="runtime",
            choices=RUNTIMES,
            default="auto",
            help="TensorRT on a GPU, or ONNX Runtime on the CPU (default: auto)",
        )


def split_input_specs(specs: list[str]) -> tuple[dict[str, Path], list[str]]:
    """``NAME=FILE`` specs -> {name: path}; the rest (``NAME:SHAPE``) are returned as they are."""
    files: dict[str, Path] = {}
    shapes = []
    for spec in specs:
        name, sep, value = spec.partition("=")
        if not sep:
            shapes.append(spec)
            continue
        if not name or not value:
            raise UsageError(f"invalid --input '{spec}': expected NAME=FILE or NAME:SHAPE")
        if name in files:
            raise UsageError(f"--input gives two files for '{name}'")
        files[name] = Path(value)
    return files, shapes


def input_files_and_options(args: argparse.Namespace) -> tuple[dict[str, Path], ImportOptions]:
    """The ``--input`` files and the import options (shapes of .npy/.npz files included)."""
    from trtimport.runtime.preprocess import load_array_file

    files, shape_specs = split_input_specs(args.input)
    args.input = shape_specs
    options = import_options(args)
    for name, path in files.items():
        if name not in options.input_shapes and path.suffix.lower() in (".npy", ".npz"):
            if not path.is_file():
                raise UsageError(f"{path}: no such input file")
            options.input_shapes[name] = tuple(load_array_file(path, name).shape)
    return files, options
