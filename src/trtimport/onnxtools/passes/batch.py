"""``--batch MIN/OPT/MAX``: make an ONNX model's batch dimension dynamic, and its profiles.

The rewrite turns dimension 0 of every graph input into the symbol ``batch`` and fixes the
places where exporters bake the batch into constants: a ``Reshape`` whose target shape starts
with the old batch gets ``-1`` there (or ``0``, "copy the input's dimension 0", when the shape
already has a ``-1``). Constants that still hold the old batch where the rewrite cannot tell
whether it is safe to change them (``Expand``, ``Tile``, ``ConstantOfShape``, ``Resize`` sizes)
are reported, naming the nodes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from trtimport.core.options import BatchRange, ImportOptions, Profile, ShapeRange
from trtimport.errors import ShapeError, UsageError
from trtimport.onnxtools.graph import drop_unused_initializers

if TYPE_CHECKING:
    import onnx

BATCH_SYMBOL = "batch"

#: Ops whose int64 shape-like input (index) may hold a baked-in batch the rewrite cannot fix.
_SHAPE_INPUTS = {"Expand": 1, "Tile": 1, "ConstantOfShape": 0, "Resize": 3}


def _int_constants(graph: onnx.GraphProto) -> dict[str, onnx.TensorProto]:
    found = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    found[node.output[0]] = a.t
    return found


def _old_batch(graph: onnx.GraphProto, inits: set[str]) -> int | None:
    batches = set()
    for vi in graph.input:
        if vi.name in inits:
            continue
        dims = vi.type.tensor_type.shape.dim
        if dims and dims[0].HasField("dim_value"):
            batches.add(dims[0].dim_value)
    if len(batches) > 1:
        raise ShapeError(
            f"--batch: the inputs have different fixed batch sizes {sorted(batches)}; "
            "give their shapes with --shapes instead"
        )
    return batches.pop() if batches else None


def make_batch_dynamic(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[str]]:
    """A copy of ``model`` with a symbolic batch dimension; returns (model, notes)."""
    import onnx
    from onnx import numpy_helper

    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    inits = {t.name for t in graph.initializer}
    old = _old_batch(graph, inits)
    notes: list[str] = []
    for vi in graph.input:
        dims = vi.type.tensor_type.shape.dim
        if vi.name not in inits and dims:
            dims[0].Clear()
            dims[0].dim_param = BATCH_SYMBOL
    for vi in graph.output:
        dims = vi.type.tensor_type.shape.dim
        if dims and dims[0].HasField("dim_value") and dims[0].dim_value == old:
            dims[0].Clear()
            dims[0].dim_param = BATCH_SYMBOL
    del graph.value_info[:]
    if old is None:
        return out, notes
    constants = _int_constants(graph)
    rewritten: dict[str, str] = {}
    suspicious = []
    for i, node in enumerate(graph.node):
        label = f"node {i} {node.name or '(unnamed)'} ({node.op_type})"
        if node.op_type == "Reshape" and len(node.input) > 1 and node.input[1] in constants:
            name = node.input[1]
            shape = numpy_helper.to_array(constants[name])
            if shape.ndim != 1 or not len(shape) or shape[0] != old:
                continue
            allowzero = any(a.name == "allowzero" and a.i for a in node.attribute)
            if name not in rewritten:
                fixed = shape.copy()
                if -1 not in shape[1:]:
                    fixed[0] = -1
                elif not allowzero:
                    fixed[0] = 0
                else:
                    suspicious.append(f"{label}: target shape {shape.tolist()} bakes in the batch")
                    continue
                new_name = f"{name}_dynamic_batch"
                graph.initializer.append(
                    numpy_helper.from_array(fixed.astype(shape.dtype), new_name)
                )
                rewritten[name] = new_name
            node.input[1] = rewritten[name]
        elif node.op_type in _SHAPE_INPUTS:
            k = _SHAPE_INPUTS[node.op_type]
            if len(node.input) > k and node.input[k] in constants:
                values = numpy_helper.to_array(constants[node.input[k]])
                if values.ndim == 1 and len(values) and values[0] == old and old != 1:
                    suspicious.append(f"{label}: constant {values.tolist()} may bake in the batch")
    if suspicious:
        notes.append(
            f"--batch: the old batch {old} is still baked into these nodes; if building or "
            "running with another batch fails, re-export the model with a dynamic batch:\n"
            + "\n".join(f"  - {s}" for s in suspicious)
        )
    drop_unused_initializers(graph)
    return out, notes


def batch_profiles(network: Any, ranges: list[BatchRange], source: str) -> list[Profile]:
    """One optimization profile per batch range, covering every input with a dynamic batch."""
    profiles: list[Profile] = []
    inputs = [network.get_input(i) for i in range(network.num_inputs)]
    problems = []
    for t in inputs:
        shape = tuple(t.shape)
        if shape and any(d < 0 for d in shape[1:]):
            problems.append(f"'{t.name}' {list(shape)}")
    if problems:
        raise UsageError(
            f"{source}: --batch only varies the batch dimension, but input(s) "
            f"{', '.join(problems)} have other dynamic dimensions; give their ranges with "
            "--shapes NAME:MIN/OPT/MAX instead"
        )
    for lo, opt, hi in ranges:
        profile: Profile = {}
        for t in inputs:
            shape = tuple(int(d) for d in t.shape)
            if shape and shape[0] < 0:
                rest = shape[1:]
                profile[t.name] = ShapeRange((lo, *rest), (opt, *rest), (hi, *rest))
        profiles.append(profile)
    return profiles


def check_batch_options(options: ImportOptions) -> list[BatchRange]:
    """The batch ranges asked for; refuses ``--batch`` together with ``--shapes``/``--profile``."""
    if options.batch is None:
        if options.more_batches:
            raise UsageError(
                "more batch ranges were given without a first one (ImportOptions.batch)"
            )
        return []
    if options.input_shapes:
        raise UsageError(
            "--batch makes the batch dynamic, but --input fixes input shapes; use one of them"
        )
    if options.profiles:
        raise UsageError(
            "--batch creates the optimization profiles itself (one per --batch range), so it "
            "cannot be combined with --shapes or --profile. Use --batch alone to vary only the "
            "batch, or drop --batch and give every dynamic input's range with --shapes/--profile"
        )
    return [options.batch, *options.more_batches]
