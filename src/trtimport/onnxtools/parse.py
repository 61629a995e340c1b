"""Hand an ONNX file to TensorRT's ONNX parser safely, collecting every error it reports."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtimport.errors import ModelParseError
from trtimport.onnxtools.external_data import external_data_references

if TYPE_CHECKING:
    import onnx

    from trtimport.core.importer import ImportContext


def _tensors_of_graph(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    yield from graph.initializer
    yield from (s.values for s in graph.sparse_initializer)
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("g"):
                yield from _tensors_of_graph(attr.g)
            for sub in attr.graphs:
                yield from _tensors_of_graph(sub)


def _references_via_onnx(path: Path) -> list[tuple[str, str]]:
    """The slow, thorough way (when the quick walk cannot read the file)."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as err:
        raise ModelParseError(
            f"{path}: not a valid ONNX model ({err}). The file may be truncated or corrupt; "
            "export it again."
        ) from err
    found = []
    for tensor in _tensors_of_graph(model.graph):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            entries = {e.key: e.value for e in tensor.external_data}
            found.append((tensor.name, entries.get("location", "")))
    return found


def check_external_data(path: Path) -> None:
    """Refuse external-data references that leave the model's folder or point nowhere."""
    references = external_data_references(path)
    if references is None:
        references = _references_via_onnx(path)
    if not references:
        return
    # The parser looks for external data beside the path it is given, so confine to that folder
    # (resolved, so that a symlinked data file pointing elsewhere is caught too).
    folder = path.absolute().parent.resolve()
    problems = []
    for name, location in references:
        target = (folder / location).resolve()
        if not location or os.path.isabs(location) or not target.is_relative_to(folder):
            problems.append(
                f"tensor '{name}': external data '{location}' is outside the model's "
                f"folder {folder}"
            )
        elif not target.is_file():
            problems.append(f"tensor '{name}': external data file '{location}' is missing")
    if problems:
        raise ModelParseError(
            f"{path}: external data must be files inside the model's folder; move them next "
            "to the model",
            problems,
        )


def prepare_onnx(ctx: ImportContext, path: Path) -> Path:
    """Checks and rewrites applied to every ONNX file before it is parsed."""
    from trtimport.onnxtools.rewrite import rewrite_onnx

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
