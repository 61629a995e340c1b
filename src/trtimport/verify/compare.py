"""Compare a candidate runner's tensors with a reference runner's.

An element passes when ``|candidate - reference| <= atol + rtol * |reference|`` (the test
``numpy.allclose(candidate, reference, rtol, atol)`` applies; NaN equals NaN); a tensor passes
when every element does and the shapes agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from trtimport.core.runner import Runner
from trtimport.errors import OutputMarkingError


@dataclass(frozen=True)
class TensorComparison:
    """How one tensor of a candidate differs from the reference."""

    name: str
    reference_shape: tuple[int, ...]
    candidate_shape: tuple[int, ...]
    #: max |candidate - reference|
    max_abs: float | None
    #: max |candidate - reference| / |reference| over elements where the reference is not 0
    max_rel: float | None
    cosine: float | None
    #: Elements outside the tolerance.
    mismatched: int
    size: int
    passed: bool
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "name": self.name,
            "reference_shape": list(self.reference_shape),
            "candidate_shape": list(self.candidate_shape),
            "max_abs": self.max_abs,
            "max_rel": self.max_rel,
            "cosine": self.cosine,
            "mismatched": self.mismatched,
            "size": self.size,
            "passed": self.passed,
            "note": self.note,
        }


def _finite_max(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    if finite.size != values.size:
        return float("inf")
    return float(finite.max()) if finite.size else 0.0


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine of the angle between two flattened tensors (1.0 when both are all zeros)."""
    x = a.astype(np.float64).ravel()
    y = b.astype(np.float64).ravel()
    nx, ny = float(np.linalg.norm(x)), float(np.linalg.norm(y))
    if nx == 0.0 and ny == 0.0:
        return 1.0
    if nx == 0.0 or ny == 0.0:
        return 0.0
    return float(np.dot(x, y) / (nx * ny))


def compare_arrays(
    name: str, reference: np.ndarray, candidate: np.ndarray, atol: float, rtol: float
) -> TensorComparison:
    """Compare one tensor; see the module docstring for the pass rule."""
    ref = np.asarray(reference)
    cand = np.asarray(candidate)
    if ref.shape != cand.shape:
        return TensorComparison(
            name,
            ref.shape,
            cand.shape,
            None,
            None,
            None,
            ref.size,
            ref.size,
            False,
            f"shape differs: reference {list(ref.shape)}, candidate {list(cand.shape)}",
        )
    r = ref.astype(np.float64)
    c = cand.astype(np.float64)
    both_nan = np.isnan(r) & np.isnan(c)
    diff = np.where(both_nan, 0.0, np.abs(c - r))
    with np.errstate(invalid="ignore"):
        ok = both_nan | (diff <= atol + rtol * np.abs(r))
    nonzero = r != 0
    rel = diff[nonzero] / np.abs(r[nonzero])
    mismatched = int(ok.size - np.count_nonzero(ok))
    note = ""
    if np.isnan(c).sum() > both_nan.sum():
        note = "candidate has NaN where the reference has numbers"
    return TensorComparison(
        name,
        ref.shape,
        cand.shape,
        _finite_max(diff) if diff.size else 0.0,
        _finite_max(rel) if rel.size else 0.0,
        cosine_similarity(np.nan_to_num(r), np.nan_to_num(c)),
        mismatched,
        int(ref.size),
        mismatched == 0,
        note,
    )


@dataclass(frozen=True)
class Divergence:
    """The first tensor, in topological order, where the candidate leaves the tolerance."""

    tensor: str
    layer: str | None
    op: str | None
    comparison: TensorComparison
    #: Position of the tensor among the compared ones (1-based) and how many were compared.
    index: int
    compared: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "tensor": self.tensor,
            "layer": self.layer,
            "op": self.op,
            "index": self.index,
            "compared": self.compared,
            "comparison": self.comparison.as_dict(),
        }


@dataclass
class CandidateReport:
    """One candidate against the reference."""

    label: str
    outputs: list[TensorComparison]
    layerwise: bool = False
    compared_tensors: int = 0
    divergence: Divergence | None = None
    notes: list[str] | None = None

    @property
    def passed(self) -> bool:
        """True when every output is within tolerance."""
        return all(c.passed for c in self.outputs)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            "candidate": self.label,
            "passed": self.passed,
            "outputs": [c.as_dict() for c in self.outputs],
            "layerwise": self.layerwise,
            "compared_tensors": self.compared_tensors,
            "first_divergence": self.divergence.as_dict() if self.divergence else None,
            "notes": self.notes or [],
        }


def _output_pairs(reference: Runner, candidate: Runner) -> tuple[list[tuple[str, str]], str]:
    """(reference name, candidate name) of each output; by name, else by position."""
    ref_names = [o.name for o in reference.outputs()]
    cand_names = [o.name for o in candidate.outputs()]
    if all(n in cand_names for n in ref_names):
        return [(n, n) for n in ref_names], ""
    if len(ref_names) == len(cand_names):
        pairs = list(zip(ref_names, cand_names, strict=True))
        shown = ", ".join(f"{a} ~ {b}" for a, b in pairs if a != b)
        return pairs, f"outputs matched by position ({shown})"
    raise OutputMarkingError(
        f"the reference's outputs ({', '.join(ref_names)}) and the candidate's "
        f"({', '.join(cand_names)}) cannot be paired; mark the same outputs with --output"
    )


def compare_runners(
    reference: Runner,
    candidate: Runner,
    feeds: dict[str, np.ndarray],
    *,
    atol: float,
    rtol: float,
    layerwise: bool = False,
    label: str | None = None,
) -> CandidateReport:
    """Run both runners on ``feeds`` and compare their outputs (and intermediates if asked)."""
    pairs, pairing_note = _output_pairs(reference, candidate)
    ref_out = reference.infer(feeds, [a for a, _ in pairs])
    cand_out = candidate.infer(feeds, [b for _, b in pairs])
    outputs = [compare_arrays(a, ref_out[a], cand_out[b], atol, rtol) for a, b in pairs]
    report = CandidateReport(
        label or str(getattr(candidate, "label", candidate.name)),
        outputs,
        notes=[pairing_note] if pairing_note else [],
    )
    if layerwise:
        report.layerwise = True
        available = set(candidate.tensor_names())
        names = [n for n in reference.tensor_names() if n in available]
        report.compared_tensors = len(names)
        if not names:
            report.notes = [*(report.notes or []), "no tensor names in common for --layerwise"]
            return report
        ref_all = reference.infer(feeds, names)
        cand_all = candidate.infer(feeds, names)
        for i, name in enumerate(names, start=1):
            comparison = compare_arrays(name, ref_all[name], cand_all[name], atol, rtol)
            if not comparison.passed:
                where = reference.producer(name) or candidate.producer(name)
                layer, op = where if where else (None, None)
                report.divergence = Divergence(name, layer, op, comparison, i, len(names))
                break
    return report
