"""INT8 calibration: activation ranges measured with ONNX Runtime on the CPU.

The calibration data is an ``.npz`` keyed by input name (samples along the first axis) or a
folder of images (preprocessed like ``trtimport run`` does). Each tensor's range (``amax``, the
largest magnitude kept before saturating) comes from one of three methods:

- ``max``: the largest magnitude seen;
- ``percentile``: the given percentile of the magnitudes (99.99 by default);
- ``entropy``: TensorRT's entropy calibration: the threshold whose 128-level quantized
  distribution of magnitudes is closest (Kullback-Leibler divergence) to the measured one;
- ``mse``: the threshold with the least squared int8 round-trip error
  (:mod:`trtimport.onnxtools.passes.calib_mse`).

Whatever the method, the graph's own inputs get the largest magnitude seen (``max``): their
values are the data itself, and clipping them (the entropy method cuts the rare ink pixels
of a sparse image) changes what the network sees. ``clip_inputs`` opts out of that.

Ranges are saved to a JSON cache together with the model's hash and the method, so later runs
skip calibration.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from trtimport.core.choices import CALIB_METHODS
from trtimport.core.files import write_atomic
from trtimport.errors import MissingDependencyError, ShapeError, TrtImportError, UsageError

if TYPE_CHECKING:
    import onnx

    from trtimport.core.options import PrecisionOptions

METHODS = CALIB_METHODS
CACHE_SCHEMA = 1
#: A calibration cache holds one number per tensor: anything larger is not one.
CACHE_LIMIT = 64 << 20
HISTOGRAM_BINS = 2048
QUANT_LEVELS = 128

Batch = dict[str, np.ndarray]


def default_calib_cache(source: Path, engine: Path | None) -> Path:
    """Where INT8 calibration ranges are cached unless ``--calib-cache`` says otherwise.

    Beside the engine (``model.engine.calib.json``) when one is built, else
    ``./<model stem>.calib.json`` in the current folder.
    """
    if engine is not None:
        return engine.with_name(engine.name + ".calib.json")
    return Path.cwd() / f"{source.stem or 'model'}.calib.json"


@dataclass(frozen=True)
class InputSpec:
    """A graph input: name, shape (None for symbolic dims) and numpy dtype."""

    name: str
    shape: tuple[int | None, ...]
    dtype: np.dtype[Any]


def model_inputs(model: onnx.ModelProto) -> list[InputSpec]:
    """The graph inputs that are not initializers."""
    from onnx import helper

    inits = {t.name for t in model.graph.initializer}
    specs = []
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        tt = vi.type.tensor_type
        shape = tuple(d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim)
        specs.append(
            InputSpec(vi.name, shape, np.dtype(helper.tensor_dtype_to_np_dtype(tt.elem_type)))
        )
    return specs


def model_hash(model: onnx.ModelProto) -> str:
    """SHA-256 of the model's deterministic serialization."""
    return hashlib.sha256(model.SerializeToString(deterministic=True)).hexdigest()


def _batch_size(spec: InputSpec) -> int:
    first = spec.shape[0] if spec.shape else None
    return first if first else 1


def _check_samples(source: Path, spec: InputSpec, samples: np.ndarray) -> np.ndarray:
    want = spec.shape[1:]
    got = samples.shape[1:]
    if len(got) != len(want) or any(
        w is not None and w != g for w, g in zip(want, got, strict=True)
    ):
        shown = ["N", *("?" if d is None else d for d in want)]
        raise ShapeError(
            f"{source}: calibration samples for input '{spec.name}' have shape "
            f"{list(samples.shape)}; the input takes [{', '.join(map(str, shown))}] "
            "(samples along the first axis)"
        )
    if np.issubdtype(samples.dtype, np.floating) and not np.isfinite(samples).all():
        bad = int(np.count_nonzero(~np.isfinite(samples)))
        raise UsageError(
            f"{source}: calibration samples for input '{spec.name}' hold {bad} NaN or infinite "
            "value(s); ranges calibrated on them would be meaningless. Use finite data."
        )
    return samples.astype(spec.dtype, copy=False)


def _npz_samples(path: Path, inputs: list[InputSpec]) -> dict[str, np.ndarray]:
    from trtimport.core.input_files import load_npz

    arrays = load_npz(path, what="calibration data")
    if len(inputs) == 1 and len(arrays) == 1:
        return {inputs[0].name: _check_samples(path, inputs[0], next(iter(arrays.values())))}
    missing = [s.name for s in inputs if s.name not in arrays]
    if missing:
        raise UsageError(
            f"{path}: no array for input(s) {', '.join(missing)}; the file holds "
            f"{', '.join(arrays) or 'nothing'}. Key the arrays by input name."
        )
    return {s.name: _check_samples(path, s, arrays[s.name]) for s in inputs}


def _image_samples(
    folder: Path, inputs: list[InputSpec], options: PrecisionOptions
) -> dict[str, np.ndarray]:
    from trtimport.runtime.preprocess import IMAGE_SUFFIXES, ImageOptions, load_image

    if len(inputs) != 1:
        raise UsageError(
            f"{folder}: a folder of images calibrates models with one input; this one has "
            f"{', '.join(s.name for s in inputs)}. Use an .npz keyed by input name."
        )
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UsageError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) to calibrate with")
    spec = inputs[0]
    image_options = options.image or ImageOptions()
    images = [load_image(p, image_options, spec.shape)[0] for p in files]
    return {spec.name: _check_samples(folder, spec, np.stack(images))}


def calibration_batches(
    options: PrecisionOptions, inputs: list[InputSpec]
) -> tuple[list[Batch], list[str]]:
    """Load the calibration data as model-sized batches; returns (batches, notes)."""
    path = options.calib_data
    if path is None:
        raise UsageError("--int8 needs calibration data: --calib-data DIR|FILE.npz")
    from trtimport.core.input_files import check_input

    check_input(path, "calibration data (--calib-data)", folder_ok=True)
    samples = _image_samples(path, inputs, options) if path.is_dir() else _npz_samples(path, inputs)
    counts = {len(v) for v in samples.values()}
    if len(counts) != 1:
        raise ShapeError(
            f"{path}: the inputs have different sample counts "
            + ", ".join(f"{k}: {len(v)}" for k, v in samples.items())
        )
    total = counts.pop()
    size = max(_batch_size(s) for s in inputs)
    count = total // size
    if options.calib_batches is not None:
        count = min(count, options.calib_batches)
    if count == 0:
        raise UsageError(f"{path}: {total} sample(s) are fewer than one batch of {size}")
    notes = []
    if total % size and options.calib_batches is None:
        notes.append(f"calibration: {total % size} sample(s) left over after batches of {size}")
    batches = [{k: v[i * size : (i + 1) * size] for k, v in samples.items()} for i in range(count)]
    return batches, notes


def ort_session(model: onnx.ModelProto, workdir: Path) -> Any:
    """An ONNX Runtime CPU session of ``model`` (saved in ``workdir`` first)."""
    try:
        import onnxruntime as ort
    except ImportError as err:
        raise MissingDependencyError("INT8 calibration", "verify", module="onnxruntime") from err
    from trtimport.onnxtools.graph import save_model

    path = workdir / "calibration.onnx"
    save_model(model, path)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def _probe_model(model: onnx.ModelProto, tensors: Iterable[str]) -> onnx.ModelProto:
    """A copy of ``model`` that also outputs ``tensors`` (except graph inputs)."""
    import onnx
    from onnx import TensorProto, helper

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    present = {o.name for o in probe.graph.output} | {i.name for i in probe.graph.input}
    for name in tensors:
        if name not in present:
            probe.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
            present.add(name)
    return probe


def _activations(
    session: Any, batches: list[Batch], tensors: list[str]
) -> Iterator[dict[str, np.ndarray]]:
    names = [o.name for o in session.get_outputs()]
    for batch in batches:
        values = dict(zip(names, session.run(None, batch), strict=True))
        values.update(batch)
        yield {t: values[t] for t in tensors}


def percentile_amax(hist: np.ndarray, amax: float, percentile: float) -> float:
    """The magnitude below which ``percentile`` % of the histogram's samples lie."""
    total = hist.sum()
    if total == 0 or amax == 0:
        return amax
    cdf = np.cumsum(hist) / total
    index = int(np.searchsorted(cdf, percentile / 100.0))
    return min(amax, (index + 1) * amax / len(hist))


def entropy_amax(hist: np.ndarray, amax: float, levels: int = QUANT_LEVELS) -> float:
    """TensorRT's entropy calibration over a histogram of magnitudes in [0, amax].

    Each candidate threshold ``i`` (in bins, from ``levels`` to all bins) clips the histogram
    at ``i`` (outliers pile into the last kept bin), quantizes the kept bins into ``levels``
    groups (each group's count spread evenly over its non-empty bins), and measures the
    KL divergence between the clipped and the quantized distribution; the smallest wins.
    """
    hist = hist.astype(np.float64)
    nbins = len(hist)
    if hist.sum() == 0 or amax == 0 or nbins <= levels:
        return amax
    tail = np.concatenate([np.cumsum(hist[::-1])[::-1], [0.0]])
    best_i, best_kl = nbins, np.inf
    for i in range(levels, nbins + 1):
        kept = hist[:i]
        p = kept.copy()
        p[-1] += tail[i]
        nonzero = kept > 0
        group = (np.arange(i) * levels) // i
        sums = np.bincount(group, weights=kept, minlength=levels)
        filled = np.bincount(group, weights=nonzero, minlength=levels)
        q = np.where(nonzero, sums[group] / np.maximum(filled[group], 1), 0.0)
        kl = _kl_divergence(p, q)
        if kl < best_kl:
            best_kl, best_i = kl, i
    return min(amax, (best_i + 0.5) * amax / nbins)


def _kl_divergence(p: np.ndarray, q: np.ndarray, eps: float = 1e-4) -> float:
    """KL(p || q) of two unnormalized histograms; q is smoothed where p has mass and q none."""
    p_sum, q_sum = p.sum(), q.sum()
    if q_sum == 0:
        return np.inf
    p = p / p_sum
    q = q / q_sum
    holes = (q == 0) & (p > 0)
    if holes.any():
        q = np.where(holes, eps, q * (1 - eps * holes.sum() / max((q > 0).sum(), 1)))
    mask = p > 0
    return float(np.sum(p[mask] * np.log(p[mask] / q[mask])))


@dataclass
class Histograms:
    """Per tensor: the largest magnitude seen and a histogram of magnitudes over [0, it]."""

    amax: dict[str, float]
    counts: dict[str, np.ndarray]
    #: The graph inputs among the tensors (never clipped unless asked).
    inputs: frozenset[str]


def collect_histograms(
    model: onnx.ModelProto, tensors: list[str], batches: list[Batch], workdir: Path
) -> Histograms:
    """Run the model over the batches twice: largest magnitudes, then histograms."""
    session = ort_session(_probe_model(model, tensors), workdir)
    amax = dict.fromkeys(tensors, 0.0)
    for values in _activations(session, batches, tensors):
        for name, value in values.items():
            if value.size:
                amax[name] = max(amax[name], float(np.max(np.abs(value))))
    counts = {name: np.zeros(HISTOGRAM_BINS, np.int64) for name in tensors}
    for values in _activations(session, batches, tensors):
        for name, value in values.items():
            if amax[name] > 0:
                found, _ = np.histogram(np.abs(value), bins=HISTOGRAM_BINS, range=(0.0, amax[name]))
                counts[name] += found
    graph_inputs = frozenset(s.name for s in model_inputs(model)) & set(tensors)
    return Histograms(amax, counts, graph_inputs)


def ranges_from(
    hists: Histograms, method: str, percentile: float, *, clip_inputs: bool = False
) -> dict[str, float]:
    """``amax`` per tensor by ``method``; graph inputs keep their largest magnitude unless
    ``clip_inputs``."""
    check_method(method, percentile)
    if method == "max":
        return dict(hists.amax)
    pick: Callable[[np.ndarray, float], float]
    if method == "percentile":
        pick = functools.partial(percentile_amax, percentile=percentile)
    elif method == "mse":
        from trtimport.onnxtools.passes.calib_mse import mse_amax

        pick = mse_amax
    else:
        pick = entropy_amax
    return {
        name: a if name in hists.inputs and not clip_inputs else pick(hists.counts[name], a)
        for name, a in hists.amax.items()
    }


def check_method(method: str, percentile: float) -> None:
    """Refuse an unknown method or a percentile outside (0, 100]."""
    if method not in METHODS:
        raise UsageError(f"--calib-method '{method}': use one of {', '.join(METHODS)}")
    if method == "percentile" and not 0 < percentile <= 100:
        raise UsageError(f"--calib-percentile {percentile}: must be in (0, 100]")


def compute_ranges(
    model: onnx.ModelProto,
    tensors: list[str],
    batches: list[Batch],
    method: str,
    percentile: float,
    workdir: Path,
    *,
    clip_inputs: bool = False,
) -> dict[str, float]:
    """Run the model over the batches and return ``amax`` per tensor.

    Graph inputs keep the largest magnitude seen (never clipped) unless ``clip_inputs``.
    """
    check_method(method, percentile)
    hists = collect_histograms(model, tensors, batches, workdir)
    return ranges_from(hists, method, percentile, clip_inputs=clip_inputs)


_KEY_NAMES = {
    "schema": "cache format",
    "model_sha256": "model",
    "method": "method",
    "percentile": "percentile",
    "data_sha256": "calibration data",
    "clip_inputs": "--calib-clip-inputs",
}


def data_hash(options: PrecisionOptions) -> str | None:
    """SHA-256 over the calibration data (a file, or a folder's images by name) and how much of
    it is used; None without data."""
    from trtimport.core.files import sha256_file
    from trtimport.runtime.preprocess import IMAGE_SUFFIXES

    path = options.calib_data
    if path is None or not path.exists():
        return None
    digest = hashlib.sha256(f"batches={options.calib_batches};image={options.image}".encode())
    if path.is_dir():
        for p in sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            digest.update(f"{p.name}:{sha256_file(p)};".encode())
    else:
        digest.update(sha256_file(path).encode())
    return digest.hexdigest()


def _cache_key(options: PrecisionOptions, digest: str) -> dict[str, Any]:
    key: dict[str, Any] = {
        "schema": CACHE_SCHEMA,
        "model_sha256": digest,
        "method": options.calib_method,
    }
    if options.calib_method == "percentile":
        key["percentile"] = options.calib_percentile
    key["clip_inputs"] = options.calib_clip_inputs
    return key


def read_cache(
    path: Path, options: PrecisionOptions, digest: str
) -> tuple[dict[str, float] | None, str]:
    """Ranges from ``path`` if it was made for this model and method; else (None, why not)."""
    from trtimport.core.input_files import read_bounded

    if not path.exists():
        return None, f"{path} does not exist"
    try:
        data = json.loads(read_bounded(path, CACHE_LIMIT, "calibration cache"))
    except (TrtImportError, ValueError, RecursionError) as err:
        return None, f"{path} is not a readable calibration cache ({err})"
    if not isinstance(data, dict):
        return None, f"{path} is not a calibration cache (not a JSON object)"
    key = _cache_key(options, digest)
    data_digest = data_hash(options)
    if data_digest is not None:
        key["data_sha256"] = data_digest
    mismatched = [_KEY_NAMES[k] for k, v in key.items() if data.get(k) != v]
    if mismatched:
        return None, f"{path} was made for a different {', '.join(mismatched)}"
    ranges = data.get("ranges")
    if not isinstance(ranges, dict) or not all(
        isinstance(v, (int, float)) and math.isfinite(v) and v >= 0 for v in ranges.values()
    ):
        return None, f"{path} holds no valid ranges (finite, non-negative numbers)"
    return {str(k): float(v) for k, v in ranges.items()}, ""


def write_cache(
    path: Path, options: PrecisionOptions, digest: str, ranges: dict[str, float], samples: int
) -> None:
    """Save the ranges with the model hash and method (atomically)."""
    data = {
        **_cache_key(options, digest),
        "samples": samples,
        "calib_data": str(options.calib_data) if options.calib_data else None,
        "data_sha256": data_hash(options),
        "ranges": ranges,
    }
    write_atomic(path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode())
