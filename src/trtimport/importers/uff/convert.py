"""UFF -> ONNX: check every op first, then convert the nodes the outputs need, in order.

Tensors keep the layout the UFF stores them in (TensorFlow's, usually NHWC): inputs and outputs
of the ONNX model have the UFF's own shapes. ``--inputs-as-nchw`` makes an input channel-second.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from trtimport.errors import (
    ModelParseError,
    OutputMarkingError,
    UnsupportedLayerError,
    UsageError,
)
from trtimport.importers.tensorflow.names import resolve
from trtimport.importers.uff.context import Converter, NotConvertible, Request
from trtimport.importers.uff.model import UffModel, UffNode
from trtimport.importers.uff.ops import handlers
from trtimport.importers.uff.ops.custom import PLUGIN_OPS, dependencies
from trtimport.onnxtools import encode

DEFAULT_OPSET = 17
#: The IR version of the ONNX files written (8: opsets up to 18).
IR_VERSION = 8
SUPPORTED_OPSETS = range(13, 19)

#: Where the TensorRT plugin ops stand (added to the unsupported-op error when they appear).
PLUGIN_NOTE = (
    "TensorRT plugin ops (*_TRT) of the SSD samples have no ONNX conversion yet; cut the graph "
    "before them with --output NODE and run them yourself"
)


@dataclass
class Conversion:
    """What a conversion wrote."""

    path: Path
    inputs: list[str]
    outputs: list[str]
    opset: int


def _output_nodes(model: UffModel, requested: list[str]) -> dict[str, str]:
    """Output spelling -> node name: the MarkOutput nodes' inputs, or ``--output`` names."""
    if not requested:
        if not model.outputs:
            raise OutputMarkingError(
                f"{model.path}: the UFF marks no outputs (no MarkOutput node); name them with "
                "--output NODE"
            )
        return {name: name for name in model.outputs}
    found = {name: resolve(name, model.nodes) for name in requested}
    missing = [name for name, node in found.items() if node is None]
    if missing:
        names = [n.name for n in model.nodes.values() if n.op not in ("MarkOutput", "Const")]
        shown = ", ".join(names[:60]) + (", …" if len(names) > 60 else "")
        raise OutputMarkingError(
            f"{model.path}: the graph has no node {', '.join(repr(n) for n in missing)} "
            f"(--output). Its nodes: {shown}"
        )
    return {name: node for name, node in found.items() if node is not None}


def _order(model: UffModel, outputs: list[str], problems: dict[str, str]) -> list[UffNode]:
    """The nodes the outputs need, each after its inputs (depth first from the outputs)."""
    order: list[UffNode] = []
    state: dict[str, int] = {}  # 1: visiting, 2: done
    for root in outputs:
        stack = [(root, False)]
        while stack:
            name, expanded = stack.pop()
            if expanded:
                state[name] = 2
                order.append(model.nodes[name])
                continue
            if state.get(name) == 2:
                continue
            if state.get(name) == 1:
                raise ModelParseError(f"{model.path}: the graph has a cycle through node '{name}'")
            state[name] = 1
            stack.append((name, True))
            node = model.nodes[name]
            try:
                needed = dependencies(model, node)
            except NotConvertible as err:
                problems[name] = f"{node.describe()}: {err}"
                needed = []
            stack += [(dep, False) for dep in reversed(needed) if state.get(dep) != 2]
    return order


def _check_ops(model: UffModel, order: list[UffNode], problems: dict[str, str]) -> None:
    """Every node's op must have a handler: one error lists every node that has none."""
    known = handlers()
    for node in order:
        if node.op not in known and node.name not in problems:
            reason = PLUGIN_OPS.get(node.op, "no conversion to ONNX")
            problems[node.name] = f"{node.describe()}: {reason}"
    if problems:
        ops = sorted({model.nodes[name].op for name in problems})
        notes = [PLUGIN_NOTE] if any(op in PLUGIN_OPS for op in ops) else []
        raise UnsupportedLayerError(
            f"{model.path}: {len(problems)} node(s) cannot be converted to ONNX (op types: "
            f"{', '.join(ops)}). Nothing was written.",
            [*problems.values(), *notes],
        )


def _check_inputs(model: UffModel, order: list[UffNode], request: Request) -> None:
    """Inputs with no shape in the file (TensorRT 3 era) need ``--input``; one error names all."""
    inputs = [n for n in order if n.op == "Input"]
    names = {n.name for n in inputs}
    unknown = sorted(request.inputs_as_nchw - names)
    if unknown:
        raise UsageError(
            f"{model.path}: --inputs-as-nchw names {', '.join(repr(n) for n in unknown)}, but "
            f"the UFF's inputs are {', '.join(sorted(names)) or '(none)'}"
        )
    blank = [
        n.name for n in inputs if not n.fields.get("shape") and n.name not in request.input_shapes
    ]
    if blank:
        example = f"{blank[0]}:1x{_shape_hint(model, blank[0])}"
        raise UsageError(
            f"{model.path}: the UFF gives no shape for input(s) "
            f"{', '.join(repr(n) for n in blank)} "
            "(files written for TensorRT 3 leave it to the application). Give each one with "
            f"--input NAME:SHAPE, batch axis included, in the layout the TensorFlow graph used "
            f"(NHWC for most), e.g. --input {example}"
        )


def _shape_hint(model: UffModel, name: str) -> str:
    """``HxWxC`` with C from the first conv reading input ``name`` (channel-last), else ``…``."""
    for node in model.nodes.values():
        if node.op == "Conv" and node.inputs[:1] == [name] and len(node.inputs) > 1:
            shape = model.nodes[node.inputs[1]].fields.get("shape") or []
            if len(shape) == 4:
                return f"HxWx{shape[2]}"
    return "…"


def uff_to_onnx(
    model: UffModel, dest: Path, request: Request | None = None, *, link_weights: bool = False
) -> Conversion:
    """Convert ``model`` to an ONNX file at ``dest`` (written atomically, nothing on error).

    The weights are written from the UFF file's mapping, never copied in memory. With
    ``link_weights=True`` (the intermediate file TensorRT's parser reads) they are not written
    at all: the ONNX file refers to them where they lie in the UFF file, as external data,
    through a symbolic link beside ``dest`` (:func:`trtimport.onnxtools.writer.write_onnx`).
    """
    request = request or Request()
    if request.opset not in SUPPORTED_OPSETS:
        raise UsageError(
            f"--opset {request.opset}: the UFF converter emits opsets "
            f"{SUPPORTED_OPSETS.start}-{SUPPORTED_OPSETS.stop - 1}"
        )
    outputs = _output_nodes(model, request.outputs)
    problems: dict[str, str] = {}
    order = _order(model, list(outputs.values()), problems)
    _check_ops(model, order, problems)
    _check_inputs(model, order, request)

    cx = Converter(model, request)
    known = handlers()
    failed: set[str] = set()
    for node in order:
        if any(dep in failed for dep in node.inputs):
            failed.add(node.name)
            continue
        try:
            known[node.op](cx, node)
        except NotConvertible as err:
            problems[node.name] = f"{node.describe()}: {err}"
            failed.add(node.name)
    if problems:
        raise UnsupportedLayerError(
            f"{model.path}: {len(problems)} node(s) cannot be converted to ONNX. Nothing was "
            "written.",
            list(problems.values()),
        )
    for spelling, name in outputs.items():
        tensor = cx.tensor(name)
        if tensor != spelling:
            tensor = cx.emit("Identity", [tensor], spelling)
        dims = cx.dims(tensor)
        cx.graph.outputs.append(
            encode.value_info(
                tensor,
                cx.elem_type(tensor),
                None
                if dims is None
                else [d if d is not None else f"{tensor}_dim{i}" for i, d in enumerate(dims)],
            )
        )
    from trtimport import __version__
    from trtimport.onnxtools.writer import write_onnx

    graph = cx.graph
    write_onnx(
        Path(dest),
        graph.graph(model.graph),
        graph.initializers,
        opset=request.opset,
        producer="trtimport",
        producer_version=__version__,
        ir_version=IR_VERSION,
        link_mapped=link_weights,
    )
    return Conversion(
        path=Path(dest),
        inputs=[n.name for n in order if n.op == "Input"],
        outputs=list(outputs),
        opset=request.opset,
    )
