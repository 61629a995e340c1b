"""Network scripts: a ``.py`` file whose ``build_network(network, weights, trt)`` fills the network.

Scripts are code. They run only when the user names one explicitly (``trtimport net.py``); a
file is recognised as a script only by its ``.py`` suffix and a top-level ``build_network``
function, which is checked by parsing (``ast``), never by running it.
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING

from trtimport.core.importer import ImportContext, Importer
from trtimport.errors import (
    ScriptExecutionError,
    ScriptOutputError,
    ScriptSyntaxError,
    TrtImportError,
)
from trtimport.plugins.hookspecs import hookimpl

if TYPE_CHECKING:
    import ast

    from trtimport.importers.script.weights import Weights

ENTRY_POINT = "build_network"

_module_ids = itertools.count()


def parse_script(path: Path) -> ast.Module:
    """Parse (never run) a script; a syntax error names ``file:line:col``."""
    import ast

    try:
        source = path.read_bytes()
    except OSError as err:
        raise ScriptSyntaxError(f"{path}: cannot read the network script ({err})") from err
    try:
        return ast.parse(source, filename=str(path))
    except SyntaxError as err:
        raise ScriptSyntaxError(
            f"{path}:{err.lineno}:{err.offset}: syntax error in the network script: {err.msg}"
        ) from err


def defines_build_network(tree: ast.Module) -> bool:
    """True if the module defines a top-level ``build_network`` function."""
    import ast

    return any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == ENTRY_POINT
        for node in tree.body
    )


def _innermost_frame_in(path: Path, tb: TracebackType | None) -> tuple[int, str] | None:
    """(line, code) of the deepest traceback frame that belongs to the script."""
    import traceback

    target = str(path.resolve())
    found = None
    for frame in traceback.extract_tb(tb):
        if frame.filename and Path(frame.filename).resolve().as_posix() == Path(target).as_posix():
            found = (frame.lineno or 0, (frame.line or "").strip())
    return found


def _located(path: Path, err: BaseException) -> str:
    where = _innermost_frame_in(path, err.__traceback__)
    if where is None:
        return f"{path}"
    line, code = where
    return f"{path}:{line}" + (f" (`{code}`)" if code else "")


def load_script(path: Path) -> ModuleType:
    """Import the script from its path under a unique module name (its filename is kept)."""
    tree = parse_script(path)
    if not defines_build_network(tree):
        raise ScriptSyntaxError(
            f"{path}: a network script must define `def {ENTRY_POINT}(network, weights, trt):` "
            "at top level"
        )
    name = f"trtimport_script_{next(_module_ids)}_{path.stem.replace('-', '_')}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ScriptSyntaxError(f"{path}: cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except TrtImportError:
        raise
    except Exception as err:
        raise ScriptExecutionError(
            f"{_located(path, err)}: the network script failed while loading: "
            f"{type(err).__name__}: {err}"
        ) from err
    finally:
        sys.modules.pop(name, None)
    return module


def _relocated(path: Path, err: TrtImportError) -> TrtImportError:
    """The same kind of error, prefixed with the script line that caused it."""
    message = f"{_located(path, err)}: in {ENTRY_POINT}: {err}"
    try:
        new = type(err)(message)
    except TypeError:
        new = ScriptExecutionError(message)
    return new


def run_script(
    path: Path, network: object, weights: Weights, trt: object, trt_errors: list[str] | None = None
) -> int:
    """Load ``path`` and call its ``build_network``; returns the line ``build_network`` starts on.

    Every failure names the script's line; ``trt_errors`` (the logger's error list) adds what
    TensorRT said while the script ran.
    """
    module = load_script(path)
    build: Callable[..., object] = module.build_network
    seen = len(trt_errors) if trt_errors is not None else 0
    try:
        build(network, weights, trt)
    except TrtImportError as err:
        raise _relocated(path, err) from err
    except Exception as err:
        said = (trt_errors or [])[seen:]
        hint = f" (TensorRT reported: {'; '.join(said)})" if said else ""
        raise ScriptExecutionError(
            f"{_located(path, err)}: {ENTRY_POINT} raised {type(err).__name__}: {err}{hint}"
        ) from err
    return int(getattr(getattr(build, "__code__", None), "co_firstlineno", 1))


class ScriptImporter(Importer):
    """Hand-written networks: ``build_network(network, weights, trt)`` in a ``.py`` file."""

    name = "script"
    description = "network script (.py defining build_network); runs the script: trusted only"
    extensions = (".py",)
    takes_weights = True

    def detect(self, path: Path, head: bytes) -> bool:
        """A ``.py`` file that defines ``build_network`` (checked with ``ast``, not run)."""
        if path.suffix.lower() != ".py" or not path.is_file():
            return False
        try:
            return defines_build_network(parse_script(path))
        except ScriptSyntaxError:
            return False

    def populate(self, ctx: ImportContext) -> None:
        """Load the weights, run the script on the empty network, check it marked outputs."""
        from trtimport.importers.script.weights import load_weights

        weights = load_weights(ctx.options.weights)
        ctx.keepalive.append(weights)
        line = run_script(
            ctx.source, ctx.network, weights, ctx.backend.trt, getattr(ctx.logger, "errors", None)
        )
        if ctx.network.num_outputs == 0 and not ctx.options.outputs:
            raise ScriptOutputError(
                f"{ctx.source}:{line}: {ENTRY_POINT} marked no outputs. Call "
                "`network.mark_output(tensor)` in the script, or name the outputs with "
                "--output NAME"
            )


@hookimpl
def trtimport_register_importers(register: Callable[[Importer], None]) -> None:
    """Register the network-script importer."""
    register(ScriptImporter())
