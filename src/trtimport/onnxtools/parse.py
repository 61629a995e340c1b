"""Hand an ONNX file to TensorRT's ONNX parser safely, collecting every error it reports."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtimport.errors import ModelParseError
from trtimport.onnxtools.external_data import check_external_data

if TYPE_CHECKING:
    from trtimport.core.importer import ImportContext


def prepare_onnx(ctx: ImportContext, path: Path) -> Path:
    """Checks and rewrites applied to every ONNX file before it is parsed."""
    from trtimport.onnxtools.rewrite import rewrite_onnx

    if ctx.work.relative(path) is None:  # trtimport's own intermediate files need no check
        check_external_data(path)
    return rewrite_onnx(ctx, path)


def parser_errors(parser: Any) -> list[str]:
    """Format every error the parser recorded as ``node N (name, Op): message``."""
    problems = []
    for i in range(parser.num_errors):
        err = parser.get_error(i)
        node = err.node()
        where = []
        if node >= 0:
            where.append(f"node {node}")
        name, op = err.node_name(), err.node_operator()
        if name or op:
            where.append(f"({name or '?'}, {op or '?'})")
        prefix = " ".join(where)
        problems.append(f"{prefix}: {err.desc()}" if prefix else str(err.desc()))
    return problems


def _raise_if_not_onnx(source: Path, path: Path) -> None:
    """After a parser failure: a file protobuf cannot read is corrupt, not unsupported."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError, RuntimeError) as err:
        raise ModelParseError(
            f"{source}: not a valid ONNX model ({type(err).__name__}: {err}). The file may be "
            "truncated or corrupt; export or download it again."
        ) from err


def parse_onnx_into(ctx: ImportContext, path: Path) -> Any:
    """Parse ``path`` into ``ctx.network`` with TensorRT's ONNX parser; returns the parser."""
    parser = ctx.backend.trt.OnnxParser(ctx.network, ctx.logger)
    ctx.keepalive.append(parser)
    if not parser.parse_from_file(str(path)):
        problems = parser_errors(parser)
        _raise_if_not_onnx(ctx.source, path)
        raise ModelParseError(
            f"{ctx.source}: TensorRT's ONNX parser ({ctx.backend.name} "
            f"{ctx.backend.version}) rejected the model with {len(problems)} error(s)",
            problems or [m for m in getattr(ctx.logger, "errors", [])],
        )
    return parser
