"""``--int8``: insert QuantizeLinear/DequantizeLinear pairs the way TensorRT wants them.

Strongly typed TensorRT (TensorRT-RTX, TensorRT 11) only computes in INT8 where the graph says
so with Q/DQ pairs. The weighted layers (Conv, ConvTranspose, Gemm, MatMul) get:

- their activation input quantized per tensor, symmetric int8 (zero point 0), with the range
  measured by :mod:`trtimport.onnxtools.passes.calibrate`;
- their weights stored as int8, per output channel (axis 0 for Conv, the output axis for
  ConvTranspose/Gemm/MatMul), followed by a DequantizeLinear.

Biases stay float; TensorRT fuses ``DQ -> Conv/MatMul`` into INT8 kernels and keeps the rest in
the type of the surrounding graph.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from trtimport.errors import UnsupportedLayerError, UsageError
from trtimport.onnxtools.graph import drop_unused_initializers, opset_of, unique_namer

if TYPE_CHECKING:
    import onnx

    from trtimport.core.options import PrecisionOptions

#: Ops each backend executes in INT8 when their inputs come through Q/DQ (see docs/precision.md).
INT8_KERNEL_OPS: dict[str, frozenset[str]] = {
    "tensorrt": frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"}),
    "tensorrt_rtx": frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"}),
}

#: Ops the quantizer knows how to quantize.
QUANTIZABLE_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})

MIN_OPSET = 13  # per-axis DequantizeLinear


@dataclass
class QuantLayer:
    """One node to quantize: its activation inputs and its weight (input index, axis)."""

    index: int
    name: str
    op: str
    activations: list[str]
    weight: tuple[int, int | None] | None = None


@dataclass
class QuantPlan:
    """Which nodes get Q/DQ, and which candidates stay in float and why."""

    layers: list[QuantLayer] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def activation_tensors(self) -> list[str]:
        """Every activation tensor that needs a calibrated range, in graph order."""
        seen: dict[str, None] = {}
        for layer in self.layers:
            for name in layer.activations:
                seen.setdefault(name)
        return list(seen)


def _attr(node: onnx.NodeProto, name: str, default: int) -> int:
    for a in node.attribute:
        if a.name == name:
            return int(a.i)
    return default


def _weight_axis(node: onnx.NodeProto, rank: int) -> int | None:
    """The output-channel axis of a weight (None: one scale for the whole tensor)."""
    if node.op_type == "Conv":
        return 0
    if node.op_type == "ConvTranspose":
        return 1 if _attr(node, "group", 1) == 1 else None
    if node.op_type == "Gemm":
        return 0 if _attr(node, "transB", 0) else 1
    return rank - 1  # MatMul: [..., K, N]


def plan_quantization(model: onnx.ModelProto, backend_name: str) -> QuantPlan:
    """Choose the layers to quantize for ``backend_name``; raise if none can run in INT8."""
    graph = model.graph
    inputs = {i.name for i in graph.input}
    weights = {t.name: t for t in graph.initializer if t.name not in inputs}
    kernels = INT8_KERNEL_OPS.get(backend_name, frozenset())
    plan = QuantPlan()
    others: dict[str, int] = {}
    for i, node in enumerate(graph.node):
        label = f"node {i} {node.name or '(unnamed)'} ({node.op_type})"
        if node.op_type not in QUANTIZABLE_OPS or node.domain not in ("", "ai.onnx"):
            others[node.op_type] = others.get(node.op_type, 0) + 1
            continue
        if node.op_type not in kernels:
            plan.skipped.append(f"{label}: {backend_name} has no INT8 kernel for {node.op_type}")
            continue
        if node.op_type == "MatMul" and node.input[0] in weights:
            plan.skipped.append(f"{label}: constant left operand; only the right one is quantized")
            continue
        weight_index = 1
        name = node.input[weight_index]
        layer = QuantLayer(i, node.name, node.op_type, [node.input[0]])
        if name in weights:
            tensor = weights[name]
            if tensor.data_type != 1:  # FLOAT
                plan.skipped.append(f"{label}: weight '{name}' is not float32")
                continue
            layer.weight = (weight_index, _weight_axis(node, len(tensor.dims)))
        elif node.op_type == "MatMul":
            layer.activations.append(name)
        else:
            plan.skipped.append(f"{label}: weight '{name}' is computed, not a constant")
            continue
        plan.layers.append(layer)
    if not plan.layers:
        found = ", ".join(f"{op} x{n}" for op, n in sorted(others.items())) or "no nodes"
        raise UnsupportedLayerError(
            f"--int8: no layer of this model can run in INT8 on {backend_name}, which has INT8 "
            f"kernels for {', '.join(sorted(kernels)) or 'no layers'} only; the model has "
            f"{found}. Build without --int8 (e.g. --precision fp16)",
            plan.skipped,
        )
    return plan


def _scale_tensors(name: str, scale: np.ndarray) -> list[onnx.TensorProto]:
    from onnx import numpy_helper

    return [
        numpy_helper.from_array(scale.astype(np.float32), f"{name}_scale"),
        numpy_helper.from_array(np.zeros(scale.shape, np.int8), f"{name}_zero_point"),
    ]


def quantize_weight(weight: np.ndarray, axis: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per channel along ``axis`` (or per tensor): returns (int8 values, scale)."""
    if axis is None:
        amax = np.array(np.max(np.abs(weight)), np.float32)
        shaped = amax
    else:
        others = tuple(d for d in range(weight.ndim) if d != axis)
        amax = np.max(np.abs(weight), axis=others).astype(np.float32)
        shaped = amax.reshape([-1 if d == axis else 1 for d in range(weight.ndim)])
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    shaped_scale = np.where(shaped > 0, shaped / 127.0, 1.0)
    q = np.clip(np.rint(weight / shaped_scale), -127, 127).astype(np.int8)
    return q, scale


def insert_qdq(
    model: onnx.ModelProto, plan: QuantPlan, ranges: dict[str, float]
) -> onnx.ModelProto:
    """A copy of ``model`` with Q/DQ before every planned layer's inputs."""
    import onnx
    from onnx import helper, numpy_helper

    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    weights = {t.name: t for t in graph.initializer}
    unique = unique_namer(graph)
    nodes = list(graph.node)
    before: dict[int, list[onnx.NodeProto]] = {}
    activation_dq: dict[str, str] = {}
    weight_dq: dict[tuple[str, int | None], str] = {}
    new_inits: list[onnx.TensorProto] = []
    for layer in plan.layers:
        node = nodes[layer.index]
        for j, name in enumerate(node.input):
            if name in layer.activations:
                if name not in activation_dq:
                    amax = max(ranges[name], 1e-12)
                    base = unique(f"{name}_int8")
                    new_inits += _scale_tensors(base, np.array(amax / 127.0, np.float32))
                    s, z = f"{base}_scale", f"{base}_zero_point"
                    before.setdefault(layer.index, []).extend(
                        [
                            helper.make_node(
                                "QuantizeLinear", [name, s, z], [f"{base}_q"], name=f"{base}_Q"
                            ),
                            helper.make_node(
                                "DequantizeLinear",
                                [f"{base}_q", s, z],
                                [f"{base}_dq"],
                                name=f"{base}_DQ",
                            ),
                        ]
                    )
                    activation_dq[name] = f"{base}_dq"
                node.input[j] = activation_dq[name]
        if layer.weight is not None:
            j, axis = layer.weight
            name = node.input[j]
            key = (name, axis)
            if key not in weight_dq:
                q, scale = quantize_weight(numpy_helper.to_array(weights[name]), axis)
                base = unique(f"{name}_int8")
                new_inits.append(numpy_helper.from_array(q, f"{base}_q"))
                new_inits += _scale_tensors(base, scale)
                extra: dict[str, Any] = {"axis": axis} if axis is not None else {}
                before.setdefault(layer.index, []).append(
                    helper.make_node(
                        "DequantizeLinear",
                        [f"{base}_q", f"{base}_scale", f"{base}_zero_point"],
                        [f"{base}_dq"],
                        name=f"{base}_DQ",
                        **extra,
                    )
                )
                weight_dq[key] = f"{base}_dq"
            node.input[j] = weight_dq[key]
    del graph.node[:]
    for i, node in enumerate(nodes):
        graph.node.extend(before.get(i, []))
        graph.node.append(node)
    graph.initializer.extend(new_inits)
    drop_unused_initializers(graph)
    return out


@dataclass
class Calibrated:
    """The quantization plan with a range for every activation it quantizes."""

    plan: QuantPlan
    ranges: dict[str, float]
    notes: list[str]

    def without(self, keep: frozenset[str]) -> QuantPlan:
        """The plan minus the layers named in ``keep`` (they stay in float)."""
        return QuantPlan([x for x in self.plan.layers if x.name not in keep], self.plan.skipped)


def calibrate_plan(
    model: onnx.ModelProto,
    options: PrecisionOptions,
    backend_name: str,
    workdir: Path,
    default_cache: Path,
) -> Calibrated:
    """Plan the Q/DQ layers and find their activation ranges: from a TensorRT calibration
    cache, our JSON cache, or by calibrating (and saving the JSON cache)."""
    from trtimport.onnxtools.passes import calibrate, legacy_cache

    if opset_of(model) < MIN_OPSET:
        raise UsageError(
            f"--int8 needs ONNX opset {MIN_OPSET} or newer (per-channel DequantizeLinear); "
            f"the model has opset {opset_of(model)}. Re-export it with a newer opset "
            "(--opset 17 for converted formats)"
        )
    plan = plan_quantization(model, backend_name)
    notes = [f"--int8: {layer}" for layer in plan.skipped]
    cache = options.calib_cache or default_cache
    if legacy_cache.is_legacy_cache(cache):
        return _from_legacy_cache(cache, model, plan, options, workdir, notes)
    tensors = plan.activation_tensors
    digest = calibrate.model_hash(model)
    ranges, why = calibrate.read_cache(cache, options, digest)
    if ranges is not None and all(t in ranges for t in tensors):
        notes.append(f"--int8: reused the activation ranges in {cache}")
    elif options.calib_data is None:
        raise UsageError(
            f"--int8 needs calibration data (--calib-data DIR|FILE.npz) or a matching "
            f"calibration cache; {why or f'{cache} lacks some tensors'}"
        )
    else:
        ranges, samples, data_notes = _calibrate(model, tensors, options, workdir)
        calibrate.write_cache(cache, options, digest, ranges, samples)
        notes += data_notes
        notes.append(
            f"--int8: calibrated {len(tensors)} activation(s) on {samples} sample(s) "
            f"({options.calib_method}); ranges saved to {cache}"
        )
    return Calibrated(plan, ranges, notes)


def _calibrate(
    model: onnx.ModelProto, tensors: list[str], options: PrecisionOptions, workdir: Path
) -> tuple[dict[str, float], int, list[str]]:
    """Ranges of ``tensors`` measured on --calib-data: (ranges, samples used, notes)."""
    from trtimport.onnxtools.passes import calibrate

    batches, notes = calibrate.calibration_batches(options, calibrate.model_inputs(model))
    ranges = calibrate.compute_ranges(
        model,
        tensors,
        batches,
        options.calib_method,
        options.calib_percentile,
        workdir,
        clip_inputs=options.calib_clip_inputs,
    )
    return ranges, sum(len(next(iter(b.values()))) for b in batches), notes


def _from_legacy_cache(
    cache: Path,
    model: onnx.ModelProto,
    plan: QuantPlan,
    options: PrecisionOptions,
    workdir: Path,
    notes: list[str],
) -> Calibrated:
    """Ranges from a TensorRT calibration cache. Tensors without an entry are calibrated when
    ``--calib-data`` is given; otherwise the layers that read them stay in float."""
    from trtimport.onnxtools.passes import legacy_cache

    ranges, note = legacy_cache.cache_ranges(cache, model, plan.activation_tensors)
    notes = [*notes, note]
    missing = [t for t in plan.activation_tensors if t not in ranges]
    if missing and options.calib_data is not None:
        found, _, data_notes = _calibrate(model, missing, options, workdir)
        ranges.update(found)
        notes += data_notes
        notes.append(
            f"--int8: no cache entry for {', '.join(missing)}: calibrated them "
            f"({options.calib_method})"
        )
    elif missing:
        layers = [x for x in plan.layers if all(a in ranges for a in x.activations)]
        left = [x.name or x.op for x in plan.layers if x not in layers]
        notes.append(
            f"--int8: no cache entry for {', '.join(missing)}: "
            f"{', '.join(left)} stay in float (give --calib-data to calibrate them)"
        )
        plan = QuantPlan(layers, plan.skipped)
    return Calibrated(plan, ranges, notes)


def int8_summary(plan: QuantPlan) -> str:
    """The note that lists the layers in INT8."""
    return (
        f"--int8: {len(plan.layers)} layer(s) in INT8: "
        + ", ".join(f"{x.name or x.op}" for x in plan.layers[:20])
        + (" …" if len(plan.layers) > 20 else "")
    )


def quantize_int8(
    model: onnx.ModelProto,
    options: PrecisionOptions,
    backend_name: str,
    workdir: Path,
    default_cache: Path,
) -> tuple[onnx.ModelProto, list[str]]:
    """Calibrate (or reuse the cache) and insert Q/DQ; returns (model, notes for the user)."""
    found = calibrate_plan(model, options, backend_name, workdir, default_cache)
    return insert_qdq(model, found.plan, found.ranges), [*found.notes, int8_summary(found.plan)]
