"""``--precision fp16|bf16``: rewrite an ONNX graph so its arithmetic runs in a 16-bit float type.

TensorRT-RTX and TensorRT 11 build strongly typed networks: every tensor keeps the type the
graph gives it, so reduced precision has to be written into the graph. The rewrite works node
by node over the ONNX protos:

- nodes whose op is in :data:`LOW_OPS` run in the lower type; every other node (in particular
  the numerically sensitive ops in :data:`SENSITIVE_OPS`, and the arithmetic that computes
  normalisation statistics by hand after a ``Reduce*``) stays in fp32;
- constants (initializers and ``Constant`` nodes) feeding lower-type nodes are converted once;
- a ``Cast`` is inserted wherever a tensor crosses from one type to the other, so the model's
  inputs and outputs stay fp32 and its interface does not change;
- control flow (If, Loop, Scan) stays fp32 inside: outer tensors its subgraphs read are cast
  back to fp32 before the node.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from trtimport.errors import UsageError
from trtimport.onnxtools.dtypes import float32_to_bfloat16_bits
from trtimport.onnxtools.graph import (
    drop_unused_initializers,
    opset_of,
    outer_names,
    rename_outer,
    subgraphs,
    unique_namer,
)

if TYPE_CHECKING:
    import onnx

PRECISIONS = ("fp32", "fp16", "bf16")

#: Ops that compute well in fp16/bf16 (their float inputs and outputs take the lower type).
LOW_OPS = frozenset(
    {
        "Abs", "Add", "AveragePool", "Ceil", "Clip", "Concat", "Conv", "ConvTranspose",
        "DepthToSpace", "Div", "Dropout", "Einsum", "Elu", "Expand", "Flatten", "Floor",
        "Gather", "GatherElements", "GatherND", "Gelu", "Gemm", "GlobalAveragePool",
        "GlobalMaxPool", "HardSigmoid", "HardSwish", "Identity", "LeakyRelu", "MatMul", "Max",
        "MaxPool", "Min", "Mish", "Mul", "Neg", "Pad", "PRelu", "Relu", "Reshape", "Resize",
        "Selu", "Sigmoid", "Sign", "Slice", "SpaceToDepth", "Split", "Sqrt", "Squeeze", "Sub",
        "Sum", "Tanh", "Tile", "Transpose", "Unsqueeze", "Upsample", "Where",
    }
)  # fmt: skip

#: Ops kept in fp32 on purpose: exponentials, logarithms, reductions and normalisation
#: statistics overflow or lose their small terms in 16 bits; TopK/ArgMax would break ties.
SENSITIVE_OPS = frozenset(
    {
        "ArgMax", "ArgMin", "BatchNormalization", "CumSum", "Erf", "Exp",
        "GroupNormalization", "InstanceNormalization", "LayerNormalization", "Log",
        "LogSoftmax", "LpNormalization", "LRN", "MeanVarianceNormalization", "Pow",
        "Reciprocal", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax",
        "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare", "Softmax",
        "Softplus", "TopK",
    }
)  # fmt: skip

#: From opset 19 on, Q/DQ scales may be 16-bit, so DequantizeLinear can feed a 16-bit layer
#: directly; before that Q/DQ stay fp32 with casts around them.
_QDQ_OPS = frozenset({"QuantizeLinear", "DequantizeLinear"})
_QDQ_16BIT_OPSET = 19

#: Ops that read any input type, so a lower-type input needs no Cast back to fp32.
_TYPE_AGNOSTIC = frozenset({"Shape", "Size", "Cast"})

#: Float inputs that ONNX fixes to fp32 whatever the data type (``Resize`` scales, ...).
FIXED_FP32_INPUTS: dict[str, frozenset[int]] = {
    "Resize": frozenset({1, 2}),
    "Upsample": frozenset({1}),
    "Dropout": frozenset({1}),
}

#: Elementwise ops that, right after a reduction, compute statistics (variance, 1/std) by hand.
_STATISTICS_OPS = frozenset({"Add", "Sub", "Mul", "Div", "Sqrt", "Reciprocal", "Pow", "Abs"})
_STATISTICS_DEPTH = 4

_FP16_MAX = 65504.0
_SMALL_CONSTANT = 4096


@dataclass
class PrecisionReport:
    """What the rewrite did, for the user's notes and the tests."""

    precision: str
    low_nodes: int = 0
    #: Names of the nodes computing in the lower type.
    lowered: list[str] = field(default_factory=list)
    kept_nodes: dict[str, int] = field(default_factory=dict)
    casts: int = 0
    constants: int = 0
    clipped_values: int = 0
    #: Nodes kept in fp32 because ONNX shape inference could not type their inputs.
    untyped: int = 0

    def summary(self) -> str:
        """One line for the user."""
        kept = ", ".join(f"{op} x{n}" for op, n in sorted(self.kept_nodes.items()))
        text = (
            f"--precision {self.precision}: {self.low_nodes} node(s) in {self.precision}, "
            f"{sum(self.kept_nodes.values())} kept in fp32"
            + (f" ({kept})" if kept else "")
            + f", {self.casts} cast(s) inserted"
        )
        if self.untyped:
            text += (
                f"; {self.untyped} node(s) stayed fp32 because ONNX shape inference could not "
                "type their inputs (custom ops?)"
            )
        if self.clipped_values:
            text += (
                f"; {self.clipped_values} weight value(s) beyond ±{_FP16_MAX:g} were clipped "
                "to the fp16 range"
            )
        return text


def low_type(precision: str) -> int:
    """The ONNX element type of ``fp16``/``bf16``."""
    from onnx import TensorProto

    types = {"fp16": TensorProto.FLOAT16, "bf16": TensorProto.BFLOAT16}
    if precision not in types:
        raise UsageError(f"--precision '{precision}': use one of {', '.join(PRECISIONS)}")
    return types[precision]


def _lower_tensor(
    array: np.ndarray, name: str, elem: int, report: PrecisionReport
) -> onnx.TensorProto:
    from onnx import TensorProto, numpy_helper

    if elem == TensorProto.FLOAT16:
        with np.errstate(over="ignore"):
            lowered = array.astype(np.float16)
        overflow = np.isinf(lowered) & ~np.isinf(array)
        if overflow.any():
            report.clipped_values += int(overflow.sum())
            lowered[overflow] = np.sign(array[overflow]) * _FP16_MAX
        return numpy_helper.from_array(lowered, name)
    tensor = TensorProto(name=name, data_type=TensorProto.BFLOAT16, dims=list(array.shape))
    tensor.raw_data = float32_to_bfloat16_bits(array).astype("<u2").tobytes()
    return tensor


def elem_types(model: onnx.ModelProto) -> dict[str, int]:
    """Element type of every tensor the graph names (after ONNX shape inference)."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(_without_big_payloads(model))
    except Exception:
        inferred = model
    graph = inferred.graph
    types: dict[str, int] = {}
    for vi in [*graph.input, *graph.output, *graph.value_info]:
        if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type:
            types[vi.name] = vi.type.tensor_type.elem_type
    for init in graph.initializer:
        types[init.name] = init.data_type
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    types[node.output[0]] = attr.t.data_type
    return types


def _without_big_payloads(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy for shape inference: large initializers keep their type and dims, not their data.

    Inference only reads the values of small constants (shapes, axes); copying and serializing
    hundreds of MB of weights for it would dominate the rewrite's time.
    """
    import onnx

    skeleton = onnx.ModelProto()
    for field_name in ("ir_version", "producer_name", "domain", "model_version"):
        setattr(skeleton, field_name, getattr(model, field_name))
    skeleton.opset_import.extend(model.opset_import)
    skeleton.functions.extend(model.functions)
    graph, source = skeleton.graph, model.graph
    graph.name = source.name
    for part in ("node", "input", "output", "value_info", "sparse_initializer"):
        getattr(graph, part).extend(getattr(source, part))
    for tensor in source.initializer:
        if int(np.prod(tensor.dims, dtype=np.int64)) <= _SMALL_CONSTANT:
            graph.initializer.append(tensor)
        else:
            graph.initializer.add(name=tensor.name, data_type=tensor.data_type, dims=tensor.dims)
    return skeleton


def _constants(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    """Float32 constants: initializers (not overridable inputs) and ``Constant`` values."""
    from onnx import TensorProto, numpy_helper

    inputs = {i.name for i in graph.input}
    found = {
        t.name: numpy_helper.to_array(t)
        for t in graph.initializer
        if t.data_type == TensorProto.FLOAT and t.name not in inputs
    }
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value" and attr.t.data_type == TensorProto.FLOAT:
                    found[node.output[0]] = numpy_helper.to_array(attr.t)
    return found


def _statistics_nodes(graph: onnx.GraphProto) -> set[int]:
    """Elementwise nodes within a few hops after a reduction: hand-written mean/variance math."""
    depth_of: dict[str, int] = {}
    marked: set[int] = set()
    for i, node in enumerate(graph.node):
        if node.op_type.startswith("Reduce") or node.op_type in (
            "GlobalAveragePool",
            "MeanVarianceNormalization",
        ):
            for out in node.output:
                depth_of[out] = 0
            continue
        if node.op_type not in _STATISTICS_OPS:
            continue
        depths = [depth_of[n] for n in node.input if n in depth_of]
        if depths and min(depths) < _STATISTICS_DEPTH:
            marked.add(i)
            for out in node.output:
                depth_of[out] = min(depths) + 1
    return marked


def convert_precision(
    model: onnx.ModelProto, precision: str, keep: frozenset[str] = frozenset()
) -> tuple[onnx.ModelProto, PrecisionReport]:
    """Return a copy of ``model`` computing in ``precision`` (fp32 returns it unchanged); the
    nodes named in ``keep`` stay fp32."""
    import onnx
    from onnx import TensorProto, helper

    report = PrecisionReport(precision)
    if precision == "fp32":
        return model, report
    target = low_type(precision)
    tag = precision
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    types = elem_types(out)
    constants = _constants(graph)
    statistics = _statistics_nodes(graph)
    unique = unique_namer(graph)
    low_ops = LOW_OPS | (_QDQ_OPS if opset_of(model) >= _QDQ_16BIT_OPSET else frozenset())

    def is_low(i: int, node: onnx.NodeProto) -> bool:
        if node.domain not in ("", "ai.onnx") or node.op_type not in low_ops or i in statistics:
            return False
        if node.name in keep:
            return False
        if all(not n or n in types for n in node.input):
            return True
        report.untyped += 1
        return False

    low = [is_low(i, n) for i, n in enumerate(graph.node)]
    #: Float tensors that hold the lower type after the rewrite, with their new names.
    lowered: dict[str, str] = {}
    graph_outputs = {o.name for o in graph.output}
    for node, node_low in zip(graph.node, low, strict=True):
        if not node_low:
            continue
        for j, name in enumerate(node.output):
            if name and types.get(name) == TensorProto.FLOAT:
                lowered[name] = unique(f"{name}_{tag}") if name in graph_outputs else name
                if name in graph_outputs:
                    node.output[j] = lowered[name]

    new_nodes: list[onnx.NodeProto] = []
    casts: dict[tuple[str, int], str] = {}
    lowered_constants: dict[str, str] = {}

    def cast(name: str, to: int) -> str:
        key = (name, to)
        if key not in casts:
            suffix = tag if to == target else "fp32"
            casts[key] = unique(f"{name}_to_{suffix}")
            source = lowered.get(name, name) if to == TensorProto.FLOAT else name
            new_nodes.append(
                helper.make_node(
                    "Cast", [source], [casts[key]], name=unique(f"Cast_{casts[key]}"), to=to
                )
            )
            report.casts += 1
        return casts[key]

    def lowered_constant(name: str) -> str:
        if name not in lowered_constants:
            lowered_constants[name] = unique(f"{name}_{tag}")
            graph.initializer.append(
                _lower_tensor(constants[name], lowered_constants[name], target, report)
            )
            report.constants += 1
        return lowered_constants[name]

    for node, node_low in zip(list(graph.node), low, strict=True):
        fixed = FIXED_FP32_INPUTS.get(node.op_type, frozenset())
        for j, name in enumerate(node.input):
            if not name or types.get(name) != TensorProto.FLOAT:
                continue
            if node_low and j not in fixed:
                if name in constants:
                    node.input[j] = lowered_constant(name)
                elif name in lowered:
                    node.input[j] = lowered[name]
                else:
                    node.input[j] = cast(name, target)
            elif name in lowered and node.op_type not in _TYPE_AGNOSTIC:
                node.input[j] = cast(name, TensorProto.FLOAT)
        if not node_low:
            _keep_subgraphs_fp32(node, lowered, lambda n: cast(n, TensorProto.FLOAT))
        if node_low:
            report.low_nodes += 1
            report.lowered.append(node.name)
        else:
            report.kept_nodes[node.op_type] = report.kept_nodes.get(node.op_type, 0) + 1
        new_nodes.append(node)
    for output in graph.output:
        if output.name in lowered:
            new_nodes.append(
                helper.make_node(
                    "Cast",
                    [lowered[output.name]],
                    [output.name],
                    name=unique(f"Cast_{output.name}"),
                    to=TensorProto.FLOAT,
                )
            )
            report.casts += 1
    del graph.node[:]
    graph.node.extend(_without_unused_constants(new_nodes, graph))
    drop_unused_initializers(graph)
    del graph.value_info[:]
    return out, report


def _keep_subgraphs_fp32(
    node: onnx.NodeProto, lowered: dict[str, str], to_fp32: Callable[[str], str]
) -> None:
    """Subgraphs stay fp32: outer tensors they read that became 16-bit are cast back first."""
    for sub in subgraphs(node):
        mapping = {name: to_fp32(name) for name in outer_names(sub) if name in lowered}
        rename_outer(sub, mapping)


def _without_unused_constants(
    nodes: list[onnx.NodeProto], graph: onnx.GraphProto
) -> list[onnx.NodeProto]:
    used = {o.name for o in graph.output}
    for node in nodes:
        used.update(node.input)
        for sub in subgraphs(node):
            used |= outer_names(sub)
    return [n for n in nodes if n.op_type != "Constant" or any(o in used for o in n.output)]
