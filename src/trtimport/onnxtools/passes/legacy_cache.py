"""TensorRT's text INT8 calibration caches (``IInt8EntropyCalibrator2``, ``IInt8MinMaxCalibrator``
and the other implicit-quantization calibrators of TensorRT 7-10), read as Q/DQ ranges.

The format, as those calibrators write it from ``writeCalibrationCache``::

    TRT-8601-EntropyCalibration2
    data: 3c010204
    conv1: 3d8a2d1e
    ...

The first line is ``TRT-<version>-<calibrator>`` (version as TensorRT's ``NV_TENSORRT_VERSION``
number, e.g. 8601 for 8.6.1; the calibrator ``EntropyCalibration2``, ``EntropyCalibration``,
``MinMaxCalibration`` or ``LegacyCalibration``). Every further line is ``<tensor>: <scale>``
with the scale as the 8 hex digits of its big-endian float32 bits; the tensor's INT8 range is
127 x scale. Names are the network's tensor names: Caffe blob names (an in-place layer's output
keeps the blob's name), ONNX tensor names, or the UFF/TensorFlow node names (without ``:0``).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from trtimport.errors import ModelParseError, UsageError

if TYPE_CHECKING:
    import onnx

HEADER = re.compile(r"^TRT-(\d+)-([A-Za-z0-9]+)$")
CALIBRATORS = (
    "EntropyCalibration2",
    "EntropyCalibration",
    "MinMaxCalibration",
    "LegacyCalibration",
)
_LINE = re.compile(r"^(.+):\s*([0-9a-fA-F]{1,8})$")


@dataclass
class LegacyCache:
    """A parsed cache: TensorRT version number, calibrator name and scale per tensor name."""

    version: int
    calibrator: str
    scales: dict[str, float]


def is_legacy_cache(path: Path) -> bool:
    """True if ``path`` is a file that starts like a TensorRT calibration cache."""
    try:
        with path.open("rb") as f:
            return f.read(4) == b"TRT-"
    except OSError:
        return False


def read_legacy_cache(path: Path) -> LegacyCache:
    """Parse a TensorRT text calibration cache; errors name the file and line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise ModelParseError(f"{path}: not a readable TensorRT calibration cache ({err})") from err
    header = HEADER.match(lines[0].strip()) if lines else None
    if header is None or header.group(2) not in CALIBRATORS:
        raise ModelParseError(
            f"{path}:1: expected a header TRT-<version>-<calibrator> with one of "
            f"{', '.join(CALIBRATORS)}; found {lines[0][:60]!r}"
        )
    scales: dict[str, float] = {}
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        match = _LINE.match(line.strip())
        if match is None:
            raise ModelParseError(
                f"{path}:{number}: expected '<tensor>: <8 hex digits of a float32 scale>', "
                f"found {line[:80]!r}"
            )
        (scale,) = struct.unpack(">f", bytes.fromhex(match.group(2).zfill(8)))
        scales[match.group(1).strip()] = scale
    return LegacyCache(int(header.group(1)), header.group(2), scales)


def _normalized(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_")


def match_names(cache_names: list[str], tensors: list[str]) -> dict[str, str]:
    """Model tensor -> cache entry: the same name, the name with or without TensorFlow's
    ``:0``, or (when only one entry fits) the same name with punctuation ignored."""
    known = set(cache_names)
    loose: dict[str, list[str]] = {}
    for name in cache_names:
        loose.setdefault(_normalized(name.removesuffix(":0")), []).append(name)
    found: dict[str, str] = {}
    for tensor in tensors:
        for candidate in (tensor, tensor.removesuffix(":0"), f"{tensor}:0"):
            if candidate in known:
                found[tensor] = candidate
                break
        else:
            fits = loose.get(_normalized(tensor.removesuffix(":0")), [])
            if len(fits) == 1:
                found[tensor] = fits[0]
    return found


#: Ops that only move values: their output has the range of their input (a Caffe InnerProduct
#: reads its bottom blob through a Flatten the converter adds, for example).
_SAME_VALUES = frozenset({"Flatten", "Reshape", "Squeeze", "Unsqueeze", "Transpose", "Identity"})


def _through_reshapes(model: onnx.ModelProto, tensors: list[str]) -> dict[str, list[str]]:
    """Per tensor: itself, then the tensors it copies through value-preserving ops."""
    producer = {o: n for n in model.graph.node for o in n.output}
    chains: dict[str, list[str]] = {}
    for tensor in tensors:
        chain = [tensor]
        node = producer.get(tensor)
        while node is not None and node.op_type in _SAME_VALUES and node.input:
            chain.append(node.input[0])
            node = producer.get(node.input[0])
        chains[tensor] = chain
    return chains


def cache_ranges(
    path: Path, model: onnx.ModelProto, tensors: list[str]
) -> tuple[dict[str, float], str]:
    """``amax`` (127 x scale) of each of ``tensors`` that the cache at ``path`` has an entry
    for, and a note saying how many; a tensor copied through reshapes (Flatten, Reshape, ...)
    takes its source's entry."""
    cache = read_legacy_cache(path)
    chains = _through_reshapes(model, tensors)
    names = match_names(list(cache.scales), sorted({t for c in chains.values() for t in c}))
    ranges = {}
    for tensor, chain in chains.items():
        entry = next((names[t] for t in chain if t in names), None)
        if entry is not None:
            ranges[tensor] = 127.0 * cache.scales[entry]
    if not ranges:
        shown = ", ".join(list(cache.scales)[:10]) + (" …" if len(cache.scales) > 10 else "")
        raise UsageError(
            f"--calib-cache {path}: none of the tensors the INT8 layers read has an entry "
            f"({', '.join(tensors)}); the cache names {shown}. Was it written for this model? "
            "Give --calib-data to calibrate instead"
        )
    note = (
        f"--int8: ranges of {len(ranges)} of {len(tensors)} activation(s) from the TensorRT "
        f"{cache.calibrator} cache {path} (TRT-{cache.version})"
    )
    return ranges, note
