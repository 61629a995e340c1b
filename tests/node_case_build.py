"""Build one ONNX node case through trtimport and through a bare TensorRT parser+build.

Runs in worker processes of ``test_onnx_node_cases.py``; kept apart from the test module so the
workers import only this and what it needs.
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

Shapes = dict[str, tuple[int, ...]]


@dataclass(frozen=True)
class CaseJob:
    """A saved node case, the shapes a user would pass with ``--input``, and the values of its
    small integer inputs (for those TensorRT makes shape tensors, ``--input-values``)."""

    name: str
    path: str
    input_shapes: tuple[tuple[str, tuple[int, ...]], ...]
    targets: tuple[str, ...]
    input_values: tuple[tuple[str, tuple[int, ...]], ...] = ()


@dataclass(frozen=True)
class CaseOutcome:
    """Whether each path built an engine, and trtimport's error when it did not."""

    name: str
    bare: bool
    trtimport: bool
    error: str = ""


def _is_dynamic(value_info: onnx.ValueInfoProto) -> bool:
    tensor_type = value_info.type.tensor_type
    if not tensor_type.HasField("shape"):
        return True
    return any(not d.HasField("dim_value") for d in tensor_type.shape.dim)


def _as_array(value: Any) -> np.ndarray | None:
    """A case's datum as an array; ONNX's cases give scalars as numpy scalars (``np.int32(10)``)."""
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, np.generic):
        return np.asarray(value)
    return None


def _inputs_with_data(
    model: onnx.ModelProto, inputs: tuple[Any, ...]
) -> Iterator[tuple[onnx.ValueInfoProto, np.ndarray]]:
    """Each graph input (initializers left out) with the case's datum for it, as an array."""
    initializers = {t.name for t in model.graph.initializer}
    graph_inputs = [i for i in model.graph.input if i.name not in initializers]
    for info, datum in zip(graph_inputs, inputs, strict=False):
        value = _as_array(datum)
        if value is not None:
            yield info, value


def dynamic_input_shapes(model: onnx.ModelProto, inputs: tuple[Any, ...]) -> Shapes:
    """Concrete shapes (from the case's data) for every input the model leaves dynamic."""
    return {
        info.name: tuple(int(d) for d in value.shape)
        for info, value in _inputs_with_data(model, inputs)
        if info.type.HasField("tensor_type") and _is_dynamic(info)
    }


def integer_input_values(model: onnx.ModelProto, inputs: tuple[Any, ...]) -> Shapes:
    """The case's values of every int32/int64 input of rank 0 or 1 (shape-tensor candidates)."""
    return {
        info.name: tuple(int(v) for v in value.reshape(-1))
        for info, value in _inputs_with_data(model, inputs)
        if value.dtype in (np.int32, np.int64) and value.ndim <= 1
    }


def silence_output() -> None:
    """Worker initializer: TensorRT's parser prints to the process's stdout/stderr directly."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.close(devnull)


@functools.cache
def _trt() -> Any:
    import tensorrt_rtx

    return tensorrt_rtx


@functools.cache
def _plugins() -> Any:
    from trtimport.plugins.manager import load_plugins

    return load_plugins()


@dataclass(frozen=True)
class BareBuild:
    """What the bare script made of a case."""

    built: bool
    #: The network's shape-tensor inputs (empty when the parse failed).
    shape_inputs: tuple[str, ...] = ()
    #: What stopped it: ``parse``, ``values`` (a shape-tensor input without values) or ``build``.
    failed_at: str = ""
    #: The parser's errors, as ``node N (name, Op): message``.
    parser_errors: tuple[str, ...] = ()


def build_bare(
    path: str, shapes: Shapes, values: Shapes, targets: tuple[str, ...], logger: Any = None
) -> BareBuild:
    """The minimal script a TensorRT user writes: parse the file, fix shapes, give shape-tensor
    inputs their values in a profile, build. ``logger`` defaults to one that drops all but
    internal errors (a Python logger is called for every message, which slows the build)."""
    from trtimport.onnxtools.parse import parser_errors

    trt = _trt()
    logger = logger or trt.Logger(trt.Logger.INTERNAL_ERROR)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(path):
        return BareBuild(False, failed_at="parse", parser_errors=tuple(parser_errors(parser)))
    shape_inputs = []
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        if tensor.name in shapes:
            tensor.shape = shapes[tensor.name]
        if tensor.is_shape_tensor:
            shape_inputs.append(tensor.name)
    config = builder.create_builder_config()
    if shape_inputs:
        if any(n not in values for n in shape_inputs):
            return BareBuild(False, tuple(shape_inputs), "values")
        profile = builder.create_optimization_profile()
        for name in shape_inputs:
            profile.set_shape_input(name, values[name], values[name], values[name])
        config.add_optimization_profile(profile)
    config.num_compute_capabilities = len(targets)
    for i, target in enumerate(targets):
        config.set_compute_capability(getattr(trt.ComputeCapability, target.upper()), i)
    built = builder.build_serialized_network(network, config) is not None
    return BareBuild(built, tuple(shape_inputs), "" if built else "build")


def build_trtimport(
    path: str, shapes: Shapes, values: Shapes, targets: tuple[str, ...]
) -> str | None:
    """Build through ``trtimport.convert``; None on success, else the error message."""
    from trtimport import BuildOptions, ImportOptions, TrtImportError, convert

    with tempfile.TemporaryDirectory(prefix="nodecase-") as out:
        try:
            convert(
                path,
                Path(out) / "case.engine",
                import_options=ImportOptions(input_shapes=dict(shapes), input_values=values),
                build_options=BuildOptions(targets=list(targets), progress=False),
                plugins=_plugins(),
            )
        except TrtImportError as err:
            return str(err).splitlines()[0]
    return None


def run_case(job: CaseJob) -> CaseOutcome:
    """Build ``job`` both ways."""
    shapes = dict(job.input_shapes)
    candidates = dict(job.input_values)
    bare = build_bare(job.path, shapes, candidates, job.targets)
    # What a user passes with --input-values: the values of the shape-tensor inputs only.
    values = {n: candidates[n] for n in bare.shape_inputs if n in candidates}
    error = build_trtimport(job.path, shapes, values, job.targets)
    return CaseOutcome(job.name, bare.built, error is None, error or "")
