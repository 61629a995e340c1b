"""``--int8``/``--precision`` with ``--keep-fp32`` and ``--max-error``.

The two rewrites (:mod:`~trtimport.onnxtools.passes.quantize`,
:mod:`~trtimport.onnxtools.passes.precision`) take a set of node names to leave alone: those
nodes are neither quantized nor lowered. ``--keep-fp32`` names them (node or output tensor
names, with ``*``/``?``/``[...]`` globs). ``--max-error E`` finds more of them itself: the
rewritten model and the fp32 model run on ONNX Runtime over sample inputs (``--calib-data``,
or seeded N(0, 1) inputs without it), and while ``max |low - fp32| / max |fp32|`` of some
output exceeds E:

1. one run of both models with every tensor as an output ranks the rewritten nodes by the
   error each adds: how many times larger the relative error of its output is than the
   largest of its inputs' (plus a floor of E / 100, so that errors far below E do not count), each
   node followed by the rewritten nodes that write its inputs (a rounding often shows only
   in what reads it: in ``(x + 4000) - 4000`` the Add rounds, the Sub shows it);
2. the most harmful node is kept in fp32, then the list of kept nodes doubles (1, 2, 4, ...;
   the remaining nodes ranked again each time, with the kept ones in fp32) until the bound
   holds (re-ranking stops once 16 are kept: it costs a run with every tensor as an output);
   then the list is bisected down to a prefix that holds, at most 1/8 longer than the
   shortest one.

The result (bound, error before and after, the kept nodes) goes to the notes and the engine's
sidecar.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from trtimport.errors import UsageError

if TYPE_CHECKING:
    import onnx

    from trtimport.core.options import PrecisionOptions
    from trtimport.onnxtools.passes.calibrate import Batch, InputSpec
    from trtimport.onnxtools.passes.quantize import Calibrated

#: Seeded random samples used without --calib-data (``calib_batches`` changes it), and the
#: most samples taken from it.
RANDOM_SAMPLES = 4
MAX_SAMPLES = 32
SEED = 0
#: Batches the ranking of nodes by harm runs on (every tensor as an output is slow).
RANKING_BATCHES = 1
#: The remaining nodes are ranked again each round while fewer than this many are kept.
RERANK_UNTIL = 16
#: The bisection stops once the kept list is within 1/8 of the shortest that would do.
BISECT_SLACK = 8


@dataclass
class GuardReport:
    """What ``--keep-fp32``/``--max-error`` did."""

    kept_by_user: list[str] = field(default_factory=list)
    bound: float | None = None
    error_before: float | None = None
    error: float | None = None
    #: Nodes the search kept in fp32, most harmful first.
    kept: list[str] = field(default_factory=list)
    samples: int = 0
    sample_source: str = ""
    trials: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (for the engine's sidecar)."""
        return {
            "keep_fp32": self.kept_by_user,
            "max_error": self.bound,
            "error_before": self.error_before,
            "error": self.error,
            "kept_for_error": self.kept,
            "samples": self.samples,
            "sample_source": self.sample_source,
        }

    def summary(self) -> str:
        """One line for the user."""
        text = ""
        if self.kept_by_user:
            text = f"--keep-fp32: {len(self.kept_by_user)} node(s) stay fp32; "
        if self.bound is None:
            return text.rstrip("; ")
        text += (
            f"--max-error {self.bound:g}: error {self.error_before:.2e} before; "
            if self.kept
            else f"--max-error {self.bound:g}: "
        )
        if self.kept:
            shown = ", ".join(self.kept[:12]) + (" …" if len(self.kept) > 12 else "")
            text += f"kept {len(self.kept)} more node(s) in fp32 ({shown}), "
        return text + (
            f"error {self.error:.2e} on {self.samples} sample(s) ({self.sample_source})"
            + (f", {self.trials} trial rewrite(s)" if self.trials else "")
        )


def name_nodes(model: onnx.ModelProto) -> None:
    """Give every unnamed node a unique name (``<op>_<index>``) so it can be kept by name."""
    from trtimport.onnxtools.graph import unique_namer

    unique = unique_namer(model.graph)
    for i, node in enumerate(model.graph.node):
        if not node.name:
            node.name = unique(f"{node.op_type}_{i}")


def resolve_keep(model: onnx.ModelProto, patterns: tuple[str, ...]) -> list[str]:
    """Names of the nodes that a ``--keep-fp32`` pattern matches by node or output name."""
    found: dict[str, None] = {}
    for pattern in patterns:
        hits = [
            n.name
            for n in model.graph.node
            if fnmatch.fnmatchcase(n.name, pattern)
            or any(fnmatch.fnmatchcase(o, pattern) for o in n.output)
        ]
        if not hits:
            examples = ", ".join(n.name for n in list(model.graph.node)[:8])
            raise UsageError(
                f"--keep-fp32 '{pattern}': no node or tensor of the model has that name "
                f"(nodes are named e.g. {examples}); globs like 'conv*' match several"
            )
        found.update(dict.fromkeys(hits))
    return list(found)


class Lowering:
    """The model rewritten for ``--int8``/``--precision``, with any set of nodes kept fp32."""

    def __init__(
        self,
        model: onnx.ModelProto,
        options: PrecisionOptions,
        calibrated: Calibrated | None,
    ) -> None:
        self.model = model
        self.options = options
        self.calibrated = calibrated
        #: The last rewrite (the final one is usually the search's last trial).
        self._last: tuple[frozenset[str], onnx.ModelProto, list[str], onnx.ModelProto] | None = None

    def apply(self, keep: frozenset[str]) -> tuple[onnx.ModelProto, list[str]]:
        """The rewritten model with the ``keep`` nodes left alone, and notes about it."""
        model, notes, _ = self._cached(keep)
        return model, list(notes)

    def measured(self, keep: frozenset[str]) -> onnx.ModelProto:
        """The model whose error is measured: :meth:`apply`'s Q/DQ, and instead of the 16-bit
        types, fp32 with every lowered node's float inputs and outputs rounded to them.

        ONNX Runtime's CPU provider runs many 16-bit ops in fp32 and drops the casts between
        such ops, so the rewritten model itself would hide roundings TensorRT performs
        (``(x + 4000) - 4000`` in fp16: 4e-4 on ONNX Runtime, 0.52 computed in fp16).
        """
        return self._cached(keep)[2]

    def _cached(self, keep: frozenset[str]) -> tuple[onnx.ModelProto, list[str], onnx.ModelProto]:
        if self._last is None or self._last[0] != keep:
            self._last = (keep, *self._rewrite(keep))
        return self._last[1], self._last[2], self._last[3]

    def _rewrite(self, keep: frozenset[str]) -> tuple[onnx.ModelProto, list[str], onnx.ModelProto]:
        from trtimport.onnxtools.passes.precision import convert_precision, low_type
        from trtimport.onnxtools.passes.quantize import insert_qdq, int8_summary

        model, notes = self.model, []
        if self.calibrated is not None:
            plan = self.calibrated.without(keep)
            if plan.layers:
                model = insert_qdq(model, plan, self.calibrated.ranges)
            notes.append(int8_summary(plan))
        measured = model
        if self.options.precision != "fp32":
            lowered, report = convert_precision(model, self.options.precision, keep)
            measured = rounded_copy(model, set(report.lowered), low_type(self.options.precision))
            model = lowered
            notes.append(report.summary())
        return model, notes, measured

    def candidates(self) -> list[str]:
        """Nodes the rewrite may change (quantized layers and lowerable ops), in graph order."""
        from trtimport.onnxtools.passes.precision import LOW_OPS

        quantized = (
            {x.name for x in self.calibrated.plan.layers} if self.calibrated is not None else set()
        )
        lowerable = LOW_OPS if self.options.precision != "fp32" else frozenset()
        return [
            n.name for n in self.model.graph.node if n.name in quantized or n.op_type in lowerable
        ]


def rounded_copy(model: onnx.ModelProto, lowered: set[str], elem: int) -> onnx.ModelProto:
    """A copy of the fp32 ``model`` in which the ``lowered`` nodes' float inputs and outputs
    pass through a Cast to ``elem`` and back: the 16-bit rounding, in fp32 arithmetic."""
    import onnx as onnx_module
    from onnx import TensorProto, helper

    from trtimport.onnxtools.graph import unique_namer
    from trtimport.onnxtools.passes.precision import FIXED_FP32_INPUTS, elem_types

    out = onnx_module.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    types = elem_types(out)
    unique = unique_namer(graph)
    nodes: list[onnx.NodeProto] = []
    rounded: dict[str, str] = {}

    def round_trip(source: str, dest: str) -> None:
        low = unique(f"{dest}_low")
        nodes.append(helper.make_node("Cast", [source], [low], name=unique(f"Cast_{low}"), to=elem))
        nodes.append(
            helper.make_node(
                "Cast", [low], [dest], name=unique(f"Cast_{dest}"), to=TensorProto.FLOAT
            )
        )

    for node in list(graph.node):
        if node.name not in lowered:
            nodes.append(node)
            continue
        fixed = FIXED_FP32_INPUTS.get(node.op_type, frozenset())
        for j, name in enumerate(node.input):
            if name and j not in fixed and types.get(name) == TensorProto.FLOAT:
                if name not in rounded:
                    rounded[name] = unique(f"{name}_rounded")
                    round_trip(name, rounded[name])
                node.input[j] = rounded[name]
        outputs = []
        for j, name in enumerate(node.output):
            if name and types.get(name) == TensorProto.FLOAT:
                node.output[j] = unique(f"{name}_unrounded")
                outputs.append((node.output[j], name))
        nodes.append(node)
        for source, dest in outputs:
            round_trip(source, dest)
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.value_info[:]
    return out


def sample_batches(
    model: onnx.ModelProto,
    options: PrecisionOptions,
    shapes: dict[str, tuple[int, ...]] | None = None,
) -> tuple[list[Batch], str]:
    """Inputs to measure the error on: from --calib-data, else seeded N(0, 1) in the input's
    shape (``shapes`` fixes dynamic ones, a dynamic batch is 1); returns (batches, source)."""
    from trtimport.onnxtools.passes.calibrate import calibration_batches, model_inputs

    inputs = model_inputs(model)
    if options.calib_data is not None:
        batches, _ = calibration_batches(options, inputs)
        taken: list[Batch] = []
        for batch in batches:
            if sum(len(next(iter(b.values()))) for b in taken) >= MAX_SAMPLES:
                break
            taken.append(batch)
        return taken, str(options.calib_data)
    rng = np.random.default_rng(SEED)
    batches = []
    for _ in range(options.calib_batches or RANDOM_SAMPLES):
        batch = {}
        for spec in inputs:
            shape = list((shapes or {}).get(spec.name) or _fixed(spec))
            if spec.dtype.kind == "f":
                batch[spec.name] = rng.normal(0, 1, shape).astype(spec.dtype)
            else:
                batch[spec.name] = np.zeros(shape, spec.dtype)
        batches.append(batch)
    return batches, f"seeded random N(0, 1), seed {SEED}"


def _fixed(spec: InputSpec) -> list[int]:
    """The input's shape with a dynamic batch taken as 1; other dynamic dimensions refused."""
    if any(d is None for d in spec.shape[1:]):
        shown = "x".join("?" if d is None else str(d) for d in spec.shape)
        raise UsageError(
            f"--max-error without --calib-data runs seeded random inputs, and input "
            f"'{spec.name}' has dynamic dimensions ({shown}): give its shape with --input "
            f"{spec.name}:1x…, or give --calib-data"
        )
    return [d or 1 for d in spec.shape]


def _run_all(model: onnx.ModelProto, batches: list[Batch], workdir: Path) -> list[list[np.ndarray]]:
    from trtimport.onnxtools.passes.calibrate import ort_session

    session = ort_session(model, workdir)
    return [[np.asarray(o) for o in session.run(None, b)] for b in batches]


def relative_error(reference: list[list[np.ndarray]], got: list[list[np.ndarray]]) -> float:
    """max over outputs of max |got - reference| / max |reference| (over every sample)."""
    worst = 0.0
    for k in range(len(reference[0]) if reference else 0):
        diff = scale = 0.0
        for ref, out in zip(reference, got, strict=True):
            if ref[k].dtype.kind not in "fc":
                continue
            a, b = ref[k].astype(np.float64), out[k].astype(np.float64)
            if a.size:
                diff = max(diff, float(np.max(np.abs(b - a))))
                scale = max(scale, float(np.max(np.abs(a))))
        error = diff / scale if scale > 0 else diff
        worst = max(worst, error if np.isfinite(error) else np.inf)
    return worst


def _tensor_errors(
    reference: onnx.ModelProto,
    lowered: onnx.ModelProto,
    tensors: list[str],
    batches: list[Batch],
    workdir: Path,
) -> dict[str, float]:
    """Relative error of each float tensor of the lowered model against the reference."""
    import onnx as onnx_module
    from onnx import TensorProto, helper

    from trtimport.onnxtools.passes.calibrate import ort_session
    from trtimport.onnxtools.passes.precision import elem_types

    floats = {TensorProto.FLOAT, TensorProto.FLOAT16}
    ref_types, low_types = elem_types(reference), elem_types(lowered)
    names = [t for t in tensors if ref_types.get(t) in floats and low_types.get(t) in floats]

    def probe(model: onnx.ModelProto, types: dict[str, int]) -> Any:
        copy = onnx_module.ModelProto()
        copy.CopyFrom(model)
        present = {o.name for o in copy.graph.output}
        for name in names:
            if name not in present:
                copy.graph.output.append(helper.make_tensor_value_info(name, types[name], None))
        return ort_session(copy, workdir)

    sessions = probe(reference, ref_types), probe(lowered, low_types)
    diff = dict.fromkeys(names, 0.0)
    scale = dict.fromkeys(names, 0.0)
    for batch in batches[:RANKING_BATCHES]:
        ref, low = (
            dict(zip([o.name for o in s.get_outputs()], s.run(None, batch), strict=True))
            for s in sessions
        )
        for name in names:
            a = ref[name]
            if a.size:
                diff[name] = max(diff[name], float(np.max(np.abs(low[name].astype(a.dtype) - a))))
                scale[name] = max(scale[name], float(np.max(np.abs(a))))
    return {n: diff[n] / scale[n] if scale[n] > 0 else diff[n] for n in names}


def rank_by_harm(
    lowering: Lowering,
    keep: frozenset[str],
    candidates: list[str],
    batches: list[Batch],
    workdir: Path,
    floor: float,
) -> list[list[str]]:
    """The candidates in groups, the one adding the most error first, each with the
    candidates that write its inputs.

    A node's harm is how many times larger the relative error of its output is than that of
    its inputs (``floor`` added to both): a ratio, not a difference, so that a layer passing
    on an error it amplifies ranks below the one that made it.
    """
    lowered = lowering.measured(keep)
    graph = lowering.model.graph
    constants = {t.name for t in graph.initializer}
    nodes = {n.name: n for n in graph.node}
    tensors = sorted(
        {
            t
            for c in candidates
            for t in (*nodes[c].input, *nodes[c].output)
            if t and t not in constants
        }
    )
    errors = _tensor_errors(lowering.model, lowered, tensors, batches, workdir)

    def harm(name: str) -> float:
        node = nodes[name]
        out = max((errors.get(t, 0.0) for t in node.output), default=0.0)
        into = max((errors.get(t, 0.0) for t in node.input if t in errors), default=0.0)
        return float(np.log((out + floor) / (into + floor)))

    position = {name: i for i, name in enumerate(candidates)}
    ranked = sorted(candidates, key=lambda n: (-harm(n), position[n]))
    # A node's error often shows only in what reads it ((x + 4000) - 4000: the Add rounds, the
    # Sub shows it), so each node is followed by the candidates that write its inputs.
    producer = {o: n.name for n in graph.node for o in n.output}
    listed: set[str] = set()
    groups = []
    for name in ranked:
        group = [
            node
            for node in dict.fromkeys((name, *(producer.get(t) for t in nodes[name].input)))
            if node in position and node not in listed
        ]
        listed.update(group)
        if group:
            groups.append(group)
    return groups


def guard(
    lowering: Lowering,
    keep: frozenset[str],
    bound: float,
    workdir: Path,
    shapes: dict[str, tuple[int, ...]] | None = None,
) -> tuple[frozenset[str], GuardReport]:
    """Keep the most harmful nodes in fp32 until the error is at most ``bound``."""
    batches, source = sample_batches(lowering.model, lowering.options, shapes)
    reference = _run_all(lowering.model, batches, workdir)
    report = GuardReport(kept_by_user=sorted(keep), bound=bound, sample_source=source)
    report.samples = sum(len(next(iter(b.values()))) for b in batches)

    def error(extra: list[str]) -> float:
        report.trials += 1
        model = lowering.measured(keep | frozenset(extra))
        return relative_error(reference, _run_all(model, batches, workdir))

    report.error_before = report.error = error([])
    if report.error <= bound:
        return keep, report
    # Grow the kept list, doubling it each round; each round ranks the remaining nodes again
    # in the context of what is already kept (a node between two kept ones costs a rounding
    # that it did not cost among lowered neighbours).
    remaining = [c for c in lowering.candidates() if c not in keep]
    order: list[str] = []
    failing, passing, errors = 0, None, {}
    groups = [[name] for name in remaining]
    while groups:
        if len(order) < RERANK_UNTIL:
            remaining = [name for group in groups for name in group]
            groups = rank_by_harm(
                lowering, keep | frozenset(order), remaining, batches, workdir, bound / 100
            )
        take = max(1, len(order))
        start = len(order)
        while groups and len(order) - start < take:
            order += groups.pop(0)
        errors[len(order)] = error(order)
        if errors[len(order)] <= bound:
            passing = len(order)
            break
        failing = len(order)
    if passing is None:
        raise UsageError(
            f"--max-error {bound:g}: even with all {len(order)} rewritten node(s) in fp32 the "
            f"error is {errors.get(len(order), report.error):.2e} on {source}; raise the bound"
        )
    while passing - failing > max(1, passing // BISECT_SLACK):
        middle = (failing + passing) // 2
        errors[middle] = error(order[:middle])
        if errors[middle] <= bound:
            passing = middle
        else:
            failing = middle
    report.kept = order[:passing]
    report.error = errors[passing]
    return keep | frozenset(report.kept), report


def lower_model(
    model: onnx.ModelProto,
    options: PrecisionOptions,
    backend_name: str,
    workdir: Path,
    default_cache: Path,
    shapes: dict[str, tuple[int, ...]] | None = None,
) -> tuple[onnx.ModelProto, list[str], GuardReport | None]:
    """Apply ``--int8`` and ``--precision`` with ``--keep-fp32``/``--max-error``.

    ``shapes`` (``--input`` shapes) fix dynamic input dimensions of the random samples.
    Returns (model, notes, report); the report is None when neither flag was given.
    """
    from trtimport.onnxtools.passes.quantize import calibrate_plan

    name_nodes(model)
    keep = frozenset(resolve_keep(model, options.keep_fp32))
    calibrated = (
        calibrate_plan(model, options, backend_name, workdir, default_cache)
        if options.int8
        else None
    )
    lowering = Lowering(model, options, calibrated)
    notes = list(calibrated.notes) if calibrated is not None else []
    report = GuardReport(kept_by_user=sorted(keep)) if keep else None
    if options.max_error is not None:
        keep, report = guard(lowering, keep, options.max_error, workdir, shapes)
    lowered, rewrite_notes = lowering.apply(keep)
    notes += rewrite_notes
    if report is not None:
        notes.append(report.summary())
    return lowered, notes, report
