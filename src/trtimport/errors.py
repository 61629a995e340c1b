"""Errors raised by trtimport.

Every problem a user can cause or fix (bad input, missing dependency, no GPU) is a
:class:`TrtImportError`; the CLI prints its message and exits with code 1. A bug in trtimport
itself is an :class:`InternalError`, which is deliberately *not* a ``TrtImportError`` so that it
shows a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable


class TrtImportError(Exception):
    """Base class of every error a user can act on."""

    exit_code = 1


class PluginLoadError(TrtImportError):
    """A plugin failed to import or registered something invalid."""


class UnknownFormatError(TrtImportError):
    """The model's format could not be detected, or detection was ambiguous."""


class ModelParseError(TrtImportError):
    """A model file is corrupt, truncated or syntactically invalid, or a parser rejected it.

    ``problems`` holds one line per individual error (every parser error is collected).
    """

    def __init__(self, message: str, problems: Iterable[str] = ()) -> None:
        self.problems = list(problems)
        if self.problems:
            message = message + "\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(message)


class UnsupportedLayerError(TrtImportError):
    """One or more layers or ops have no converter; every one of them is listed."""

    def __init__(self, message: str, layers: Iterable[str] = ()) -> None:
        self.layers = list(layers)
        if self.layers:
            message = message + "\n" + "\n".join(f"  - {x}" for x in self.layers)
        super().__init__(message)


class ShapeError(TrtImportError):
    """A tensor or weight blob has a shape that does not fit, or a shape flag is wrong."""


class OutputMarkingError(TrtImportError):
    """A requested output tensor does not exist, or the network has no outputs."""


class ScriptSyntaxError(ModelParseError):
    """The network script is not valid Python, or lacks ``build_network``."""


class ScriptExecutionError(TrtImportError):
    """The network script raised an exception while loading or in ``build_network``."""


class ScriptOutputError(OutputMarkingError):
    """The network script marked no outputs and none were named with ``--output``."""


class WeightNameError(TrtImportError):
    """A script asked for a weight the file does not have; the message lists near matches."""


class WeightShapeError(ShapeError):
    """A weight exists but its shape is not the one the script asked for."""


class UsageError(TrtImportError):
    """A command-line flag or API argument is invalid."""


class EngineBuildError(TrtImportError):
    """TensorRT failed to build an engine."""


class MissingDependencyError(TrtImportError):
    """An optional dependency is not installed; the message names the pip extra."""

    def __init__(self, what: str, extra: str, module: str | None = None) -> None:
        self.extra = extra
        self.module = module
        detail = f" (module '{module}' is not installed)" if module else ""
        super().__init__(f"{what} needs `pip install trtimport[{extra}]`{detail}.")


class InferenceError(TrtImportError):
    """Running a model or engine failed (a runtime rejected the inputs, a CUDA call failed)."""


class NoGpuError(TrtImportError):
    """The operation needs a GPU that the TensorRT backend can run engines on."""


class InternalError(Exception):
    """A bug in trtimport. Not a :class:`TrtImportError`: it shows a traceback."""
