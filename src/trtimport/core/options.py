"""Options for importing a model and building an engine, and parsers for their CLI spellings."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from trtimport.core.choices import DEFAULT_CALIB_METHOD
from trtimport.core.importer_options import ImporterOptions
from trtimport.errors import UsageError

Shape = tuple[int, ...]

_O = TypeVar("_O", bound=ImporterOptions)


@dataclass(frozen=True)
class ImageOptions:
    """How an image becomes an NCHW (or NHWC) float tensor."""

    #: (height, width) to resize to; None keeps the size (or takes it from the model's input).
    resize: tuple[int, int] | None = None
    scale: float = 1.0
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    #: ``rgb``, ``bgr`` (OpenCV's and Caffe's order) or ``gray``; None follows the model.
    channel_order: str | None = None
    #: ``nchw`` or ``nhwc``.
    layout: str = "nchw"


@dataclass(frozen=True)
class ShapeRange:
    """One input's min/opt/max shapes within an optimization profile."""

    min: Shape
    opt: Shape
    max: Shape

    def as_dict(self) -> dict[str, list[int]]:
        """JSON-friendly form."""
        return {"min": list(self.min), "opt": list(self.opt), "max": list(self.max)}


#: One optimization profile: input name -> shape range.
Profile = dict[str, ShapeRange]

#: A batch range (min, opt, max).
BatchRange = tuple[int, int, int]


@dataclass(frozen=True)
class PrecisionOptions:
    """Reduced precision and INT8 quantization, applied to the ONNX model before parsing."""

    #: ``fp32``, ``fp16`` or ``bf16``: the type the (non-quantized) layers compute in.
    precision: str = "fp32"
    int8: bool = False
    #: An ``.npz`` keyed by input name (samples along axis 0) or a folder of images.
    calib_data: Path | None = None
    #: Use at most this many calibration batches (default: all).
    calib_batches: int | None = None
    #: ``max``, ``percentile`` (default), ``entropy`` (TensorRT's KL-divergence calibration)
    #: or ``mse`` (least squared round-trip error).
    calib_method: str = DEFAULT_CALIB_METHOD
    calib_percentile: float = 99.99
    #: JSON file with the activation ranges; reused when the model and method match.
    calib_cache: Path | None = None
    #: How calibration images become tensors (same options as ``trtimport run``); None means
    #: the defaults of :class:`ImageOptions`.
    image: ImageOptions | None = None
    #: Let the method clip the network's inputs too (by default they get the largest value).
    calib_clip_inputs: bool = False
    #: Nodes or tensors (names or globs) that stay fp32: neither quantized nor lowered.
    keep_fp32: tuple[str, ...] = ()
    #: Bound on max |low - fp32| / max |fp32| of every output, checked on ONNX Runtime; the
    #: most harmful layers are kept in fp32 until it holds.
    max_error: float | None = None

    def __post_init__(self) -> None:
        if not self.active and (self.keep_fp32 or self.max_error is not None):
            raise UsageError(
                "--keep-fp32 and --max-error apply to --int8 or --precision fp16|bf16; the "
                "model is built in fp32 already"
            )
        if self.max_error is not None and not self.max_error > 0:
            raise UsageError(f"--max-error {self.max_error}: must be a positive number")
        if self.calib_batches is not None and self.calib_batches < 1:
            raise UsageError("--calib-batches must be at least 1")

    @property
    def active(self) -> bool:
        """True if the ONNX model is rewritten at all."""
        return self.int8 or self.precision != "fp32"

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly form (for the engine's sidecar)."""
        return {
            "precision": self.precision,
            "int8": self.int8,
            "calib_data": str(self.calib_data) if self.calib_data else None,
            "calib_batches": self.calib_batches,
            "calib_method": self.calib_method if self.int8 else None,
            "calib_percentile": self.calib_percentile
            if self.int8 and self.calib_method == "percentile"
            else None,
            "calib_cache": str(self.calib_cache) if self.calib_cache else None,
            "calib_clip_inputs": self.calib_clip_inputs if self.int8 else None,
            "keep_fp32": list(self.keep_fp32),
            "max_error": self.max_error,
        }


@dataclass
class ImportOptions:
    """What the importer needs besides the model file."""

    weights: Path | None = None
    format: str | None = None
    #: Fixed input shapes that replace the model's (``--input NAME:1x3x224x224``).
    input_shapes: dict[str, Shape] = field(default_factory=dict)
    #: Optimization profiles for dynamic inputs (``--shapes``/``--profile``). For a shape-tensor
    #: input (``ITensor.is_shape_tensor``) a range holds the tensor's values, not its shape.
    profiles: list[Profile] = field(default_factory=list)
    #: Fixed values of shape-tensor inputs (``--input-values NAME:2,-1``), in every profile.
    input_values: dict[str, Shape] = field(default_factory=dict)
    #: Tensor names to mark as outputs, replacing the model's own outputs.
    outputs: list[str] = field(default_factory=list)
    #: ONNX opset for importers that convert to ONNX.
    opset: int | None = None
    #: Batch range (min, opt, max) that makes the batch dimension dynamic (first profile).
    batch: BatchRange | None = None
    #: More batch ranges, one more optimization profile each (``--batch`` repeated).
    more_batches: list[BatchRange] = field(default_factory=list)
    #: ``--precision``, ``--int8`` and calibration (a plain ``"fp16"`` is accepted too).
    precision: PrecisionOptions = field(default_factory=PrecisionOptions)
    #: Each importer's own options (its ``options_class``), keyed by the class's ``key``, e.g.
    #: ``{"tensorflow": TensorFlowOptions(inputs_as_nchw=("x",))}``. Read back from a sidecar,
    #: a value is the plain mapping the sidecar recorded (see :meth:`importer_options_for`).
    importer_options: Mapping[str, ImporterOptions | Mapping[str, object]] = field(
        default_factory=dict
    )
    #: Rewrite an ONNX graph TensorRT refuses (fold constants, standard ops); ``--no-rewrite``.
    rewrite: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.weights, str):
            self.weights = Path(self.weights)
        if isinstance(self.precision, str):
            self.precision = PrecisionOptions(precision=self.precision)

    def importer_options_for(self, cls: type[_O]) -> _O:
        """The options of class ``cls``: those given, those a sidecar recorded, or the defaults."""
        value = self.importer_options.get(cls.key)
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, Mapping):
            return cls.from_dict(value)
        raise UsageError(
            f"importer_options[{cls.key!r}] is a {type(value).__name__}; the importer takes "
            f"{cls.__name__}"
        )


@dataclass
class BuildOptions:
    """How to turn a populated network into an engine."""

    workspace: int | None = None
    optimization_level: int | None = None
    #: TensorRT-RTX compute capabilities (``sm86``); empty means portable.
    targets: list[str] = field(default_factory=list)
    refittable: bool = False
    strip_weights: bool = False
    #: Timing cache (TensorRT) or runtime cache (TensorRT-RTX) file.
    cache: Path | None = None
    profiling_verbosity: str | None = None
    progress: bool = True
    #: Threads TensorRT's builder may use; None means every CPU this process may run on.
    #: TensorRT's own default is 1. The engine is the same whatever the number.
    builder_threads: int | None = None


_DIM_SEP = re.compile(r"[x,]")


def parse_shape(text: str, *, what: str = "shape") -> Shape:
    """``1x3x224x224`` (or ``1,3,224,224``) -> ``(1, 3, 224, 224)``."""
    text = text.strip()
    if text in ("", "[]", "scalar"):
        return ()
    try:
        dims = tuple(int(d) for d in _DIM_SEP.split(text.strip("[]()")))
    except ValueError as err:
        raise UsageError(
            f"invalid {what} '{text}': write dimensions as integers separated by x, "
            "e.g. 1x3x224x224"
        ) from err
    if any(d < 0 for d in dims):
        raise UsageError(f"invalid {what} '{text}': dimensions must not be negative")
    return dims


def _split_name(spec: str, flag: str, example: str) -> tuple[str, str]:
    name, sep, rest = spec.rpartition(":")
    if not sep or not name:
        raise UsageError(f"invalid {flag} '{spec}': expected NAME:{example}")
    return name, rest


def parse_input_spec(spec: str) -> tuple[str, Shape]:
    """``NAME:1x3x224x224`` -> (name, shape). Names may contain colons (``input:0``)."""
    name, rest = _split_name(spec, "--input", "1x3x224x224")
    return name, parse_shape(rest, what=f"shape for input '{name}'")


def parse_input_values_spec(spec: str) -> tuple[str, Shape]:
    """``NAME:2,-1`` (or ``2x-1``) -> (name, values) for a shape-tensor input; ``NAME:`` is none."""
    name, rest = _split_name(spec, "--input-values", "2,-1")
    text = rest.strip().strip("[]()")
    try:
        return name, tuple(int(v) for v in _DIM_SEP.split(text)) if text else ()
    except ValueError as err:
        raise UsageError(
            f"invalid --input-values '{spec}': write the values as integers separated by "
            "commas, e.g. shape:2,-1"
        ) from err


def parse_shapes_spec(spec: str) -> tuple[str, ShapeRange]:
    """``NAME:MIN/OPT/MAX`` (or ``NAME:SHAPE`` for a fixed range) -> (name, range)."""
    name, rest = _split_name(spec, "--shapes", "1x3x224x224/4x3x224x224/8x3x224x224")
    parts = rest.split("/")
    if len(parts) == 1:
        parts = parts * 3
    if len(parts) != 3:
        raise UsageError(f"invalid --shapes '{spec}': expected NAME:MIN/OPT/MAX")
    lo, opt, hi = (parse_shape(p, what=f"shape for input '{name}'") for p in parts)
    if not (len(lo) == len(opt) == len(hi)):
        raise UsageError(f"invalid --shapes '{spec}': MIN, OPT and MAX must have the same rank")
    if any(not (a <= b <= c) for a, b, c in zip(lo, opt, hi, strict=True)):
        raise UsageError(f"invalid --shapes '{spec}': need MIN <= OPT <= MAX in every dimension")
    return name, ShapeRange(lo, opt, hi)


def parse_profile(specs: list[str]) -> Profile:
    """Several ``NAME:MIN/OPT/MAX`` specs (space or semicolon separated) -> one profile."""
    profile: Profile = {}
    for spec in specs:
        for part in re.split(r"[;\s]+", spec.strip()):
            if part:
                name, rng = parse_shapes_spec(part)
                profile[name] = rng
    return profile


def parse_batch(text: str) -> tuple[int, int, int]:
    """``1/8/32`` (or a single ``8``) -> (min, opt, max)."""
    parts = text.split("/")
    if len(parts) == 1:
        parts = parts * 3
    try:
        lo, opt, hi = (int(p) for p in parts)
    except ValueError as err:
        raise UsageError(f"invalid --batch '{text}': expected MIN/OPT/MAX, e.g. 1/8/32") from err
    if not (1 <= lo <= opt <= hi):
        raise UsageError(f"invalid --batch '{text}': need 1 <= MIN <= OPT <= MAX")
    return lo, opt, hi


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """``2G``, ``512M``, ``1048576`` -> bytes."""
    match = _SIZE.match(text)
    if not match:
        raise UsageError(f"invalid size '{text}': use a number with K, M or G, e.g. 2G")
    scale = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    return int(float(match.group(1)) * scale[match.group(2).lower()])
