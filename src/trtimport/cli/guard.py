"""What every command checks before it starts: its files, its numbers, and its signals.

One table says, per command, which parsed arguments are files it reads and which are files it
writes. Before the command runs, every input must be a regular file (or a folder where a
format takes one), every output must be a place a file can be written that is none of the
inputs (:func:`~trtimport.core.output_files.check_outputs`), and every numeric flag must be a
finite number in its range. SIGTERM and SIGHUP end a command the way Ctrl-C does: the
temporary files are removed and nothing partial is left.
"""

from __future__ import annotations

import _signal as signal  # the C module: ``signal``'s enum wrappers cost start-up time
import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trtimport.errors import UsageError

#: Command -> {argument dest: flag} of the files it writes. ``convert`` also checks its
#: default outputs and the model's related files in the library (``pipeline.convert``).
OUTPUTS: dict[str, dict[str, str]] = {
    "convert": {
        "engine": "-o",
        "save_onnx": "--save-onnx",
        "save_network_onnx": "--save-network-onnx",
        "calib_cache": "--calib-cache",
        "cache": "--cache",
    },
    "run": {"save_outputs": "--save-outputs", "calib_cache": "--calib-cache"},
    "bench": {"export_times": "--export-times", "calib_cache": "--calib-cache"},
    "verify": {"calib_cache": "--calib-cache"},
    "refit": {"output": "-o"},
    "caffe": {"output": "-o"},
}

#: Argument dest -> (what it is, whether a folder is acceptable) for the files commands read.
INPUTS: dict[str, tuple[str, bool]] = {
    "model": ("model", True),
    "weights": ("weights (--weights)", True),
    "calib_data": ("calibration data (--calib-data)", True),
    "candidate": ("candidate model (--candidate)", False),
    "prototxt": ("prototxt", False),
}

#: The input that ``refit`` rewrites in place when no ``-o`` is given.
_REFIT_ENGINE = "engine"


def finite(v: float) -> bool:
    """Neither infinite nor NaN (``math.isfinite`` without importing ``math``)."""
    return -_INFINITY < v < _INFINITY


_INFINITY = float("inf")


def _number_rules() -> dict[str, tuple[str, Callable[[Any], bool], str]]:
    """dest -> (flag, test, what the flag needs) for every numeric flag."""
    return {
        "top_k": ("--top-k", lambda v: v >= 0, "a count of 0 or more"),
        "streams": ("--streams", lambda v: 1 <= v <= 64, "a count from 1 to 64"),
        "iterations": ("--iterations", lambda v: 1 <= v <= 10**9, "a count of 1 or more"),
        # At most a day: larger values would never end (1e308 ms).
        "warmup": ("--warmup", lambda v: finite(v) and 0 <= v <= 86_400_000, "0 to 86400000 ms"),
        "duration": ("--duration", lambda v: finite(v) and 0 <= v <= 86_400, "0 to 86400 s"),
        "atol": ("--atol", lambda v: finite(v) and v >= 0, "a finite number of 0 or more"),
        "rtol": ("--rtol", lambda v: finite(v) and v >= 0, "a finite number of 0 or more"),
        "scale": ("--scale", lambda v: finite(v) and v != 0, "a finite, non-zero number"),
        "calib_percentile": (
            "--calib-percentile",
            lambda v: finite(v) and 0 < v <= 100,
            "a percentile above 0 and at most 100",
        ),
        "calib_batches": ("--calib-batches", lambda v: v >= 1, "a count of 1 or more"),
        "opset": ("--opset", lambda v: 7 <= v <= 30, "an ONNX opset from 7 to 30"),
        "opt_level": ("--opt-level", lambda v: 0 <= v <= 5, "a level from 0 to 5"),
        "seed": ("--seed", lambda v: 0 <= v < 2**32, "0 to 2**32-1"),
    }


def check_numbers(args: argparse.Namespace) -> None:
    """Refuse a numeric flag outside its range (NaN, infinity, negative counts, …)."""
    if getattr(args, "builder_threads", None) is not None:
        from trtimport.build.builder import builder_threads

        builder_threads(args.builder_threads)
    for dest, (flag, test, needs) in _number_rules().items():
        value = getattr(args, dest, None)
        if value is not None and not test(value):
            raise UsageError(f"invalid {flag} {value}: expected {needs}")
    for dest, flag in (("mean", "--mean"), ("std", "--std")):
        text = getattr(args, dest, None)
        if not text:
            continue
        from trtimport.runtime.preprocess import parse_floats

        values = parse_floats(text, flag)
        if not values or not all(finite(v) for v in values):
            raise UsageError(f"invalid {flag} '{text}': expected finite numbers")
        if dest == "std" and any(v == 0 for v in values):
            raise UsageError(f"invalid --std '{text}': a standard deviation of 0 divides by 0")


def input_paths(args: argparse.Namespace) -> list[Path]:
    """Every file the command reads, each checked to be a regular file (or an allowed folder)."""
    from trtimport.core.input_files import check_input

    found: list[Path] = []
    for dest, (what, folder_ok) in INPUTS.items():
        path = getattr(args, dest, None)
        if isinstance(path, Path):
            check_input(path, what, folder_ok=folder_ok)
            found.append(path)
    if args.command == "refit":
        check_input(args.engine, "engine")
        found.append(args.engine)
    for spec in getattr(args, "input", None) or []:
        name, sep, value = spec.partition("=")
        if sep and name and value:
            check_input(Path(value), f"input file for '{name}'")
            found.append(Path(value))
    return found


def prepare(args: argparse.Namespace) -> None:
    """Everything checked before a command runs: numbers, then files (for the commands that
    read or write any), and the removal of dead runs' temporary folders."""
    check_numbers(args)
    if args.command in OUTPUTS:
        from trtimport.core.output_files import clean_stale_temp

        check_paths(args)
        clean_stale_temp()


def check_paths(args: argparse.Namespace) -> None:
    """Check the command's inputs and outputs before it runs (see the module's docstring)."""
    from trtimport.build.engine import sidecar_path
    from trtimport.core.output_files import check_outputs

    inputs = input_paths(args)
    outputs: dict[str, Path | None] = {}
    for dest, flag in OUTPUTS.get(args.command, {}).items():
        path = getattr(args, dest, None)
        if isinstance(path, Path):
            outputs[flag] = path
    engine_out = outputs.get("-o") if args.command in ("convert", "refit") else None
    if engine_out is not None and engine_out.name:  # no name: a folder, refused below
        outputs["the engine's sidecar"] = sidecar_path(engine_out)
    if args.command == "refit" and engine_out is not None:
        inputs.append(sidecar_path(args.engine))
    check_outputs(outputs, inputs)


#: The signals that end a command the way Ctrl-C does.
_HANDLED = ("SIGTERM", "SIGHUP")
#: The signals that cancel a TensorRT build cleanly (cli/progress.py).
CANCEL_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", *_HANDLED) if hasattr(signal, name)
)
#: The signals received (the exit code is 128 + the last one's number, as shells do).
_signal_received: list[int] = []
#: The signals whose handlers :func:`install_signal_handlers` installed.
_installed: list[int] = []


def install_signal_handlers() -> None:
    """SIGTERM and SIGHUP raise KeyboardInterrupt, as Ctrl-C does, so that every ``finally``
    and temporary-file cleanup runs; :func:`signal_exit_code` tells them apart. A signal the
    parent ignores (``nohup``) stays ignored."""

    def handler(signum: int, frame: Any) -> None:
        record_signal(signum)
        raise KeyboardInterrupt

    for name in _HANDLED:
        number = getattr(signal, name, None)
        if number is not None and signal.getsignal(number) == signal.SIG_DFL:
            signal.signal(number, handler)
            _installed.append(number)
    if signal.getsignal(signal.SIGINT) == signal.SIG_DFL:  # ``python -m trtimport`` start-up
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _installed.append(signal.SIGINT)


def record_signal(signum: int) -> None:
    """Remember the signal that interrupts the command (for :func:`signal_exit_code`)."""
    _signal_received.append(signum)


def restore_signal_handlers() -> None:
    """The signals :func:`install_signal_handlers` took back to their default action (the
    process ends at once, without a traceback from wherever it was)."""
    while _installed:
        signal.signal(_installed.pop(), signal.SIG_DFL)


def quiet_exit() -> None:
    """From now on Ctrl-C ends the process at once, without a traceback from wherever it
    was: for the exit of the ``trtimport`` process, once every output is complete."""
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, signal.SIG_DFL)


def caused_by_interrupt(err: BaseException) -> bool:
    """Whether a Ctrl-C or a signal caused ``err``: one arriving during an import or a class
    definition comes back wrapped (an ImportError, a RuntimeError from ``__set_name__``, a
    MissingDependencyError around the ImportError)."""
    cause: BaseException | None = err
    seen = 0
    while cause is not None and seen < 100:
        if isinstance(cause, KeyboardInterrupt):
            return True
        cause, seen = cause.__cause__ or cause.__context__, seen + 1
    return False


def signal_exit_code() -> int:
    """128 + the number of the last signal that interrupted the command (SIGINT when none was
    recorded)."""
    return 128 + (_signal_received[-1] if _signal_received else signal.SIGINT)
