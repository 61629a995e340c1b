"""Named weight arrays for network scripts, read from .npz, .safetensors, .wts, .caffemodel or ONNX.

Every format loads into one read-only :class:`Weights` mapping (name -> numpy array). Nothing is
executed or unpickled: ``.npz`` is read with ``allow_pickle=False`` and ``.safetensors`` is parsed
here from its documented layout (8-byte little-endian header length, JSON header, raw data).
"""

from __future__ import annotations

import difflib
import json
import struct
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from trtimport.errors import (
    ModelParseError,
    TrtImportError,
    UsageError,
    WeightNameError,
    WeightShapeError,
)
from trtimport.onnxtools.dtypes import bfloat16_bits_to_float32
from trtimport.onnxtools.external_data import load_initializers

# safetensors dtype -> numpy dtype. BF16 is read as its raw uint16 bits (see onnxtools.dtypes).
_SAFETENSORS_DTYPES: dict[str, str] = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "BF16": "<u2",
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U8": "u1",
    "BOOL": "?",
}


class Weights(Mapping[str, np.ndarray]):
    """A read-only mapping of weight names to numpy arrays, with checked lookups.

    ``weights["conv1/0"]`` returns the array as stored; :meth:`get` can also check (and, for
    flat formats such as ``.wts``, apply) the shape the network needs. Arrays derived from
    weights (folded batch norms, transposed kernels) are kept alive with :meth:`pin` so that
    TensorRT, which does not copy weights until the build, never reads freed memory.
    """

    def __init__(self, arrays: Mapping[str, np.ndarray], source: str = "weights") -> None:
        self._arrays = dict(arrays)
        self.source = source
        self._pinned: list[Any] = []

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self._arrays[name]
        except KeyError:
            raise WeightNameError(self._missing_message(name)) from None

    def __contains__(self, name: object) -> bool:
        return name in self._arrays

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)

    def __repr__(self) -> str:
        return f"Weights({self.source!r}, {len(self)} arrays)"

    def _missing_message(self, name: str) -> str:
        near = difflib.get_close_matches(name, list(self._arrays), n=5, cutoff=0.5)
        hint = (
            f"; did you mean {', '.join(repr(n) for n in near)}?"
            if near
            else f"; it has {_preview(list(self._arrays))}"
        )
        return f"{self.source} has no weight named '{name}'{hint}"

    def get(  # type: ignore[override]
        self,
        name: str,
        default: Any = None,
        *,
        shape: Sequence[int] | None = None,
        dtype: Any = None,
    ) -> Any:
        """The array ``name`` (``default`` if absent and a default is given).

        With ``shape``, the array must have that shape, or be flat with that many elements, or
        differ only in size-1 dimensions (it is then reshaped); anything else is a
        :class:`WeightShapeError`. With ``dtype`` the
        array is converted (and pinned).
        """
        if name not in self._arrays:
            if default is not None:
                return default
            raise WeightNameError(self._missing_message(name))
        array = self._arrays[name]
        if shape is not None:
            array = self._shaped(name, array, tuple(int(d) for d in shape))
        if dtype is not None and array.dtype != np.dtype(dtype):
            array = self.pin(np.ascontiguousarray(array, dtype=dtype))
        return array

    def _shaped(self, name: str, array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        if array.shape == shape:
            return array
        # Flat formats (.wts) and Caffe's legacy 4-D blobs store the right values in another
        # layout of the same size: accept them when only size-1 dimensions differ.
        if array.ndim <= 1 and array.size == int(np.prod(shape, dtype=np.int64)):
            return self.pin(array.reshape(shape))
        if _without_ones(array.shape) == _without_ones(shape):
            return self.pin(array.reshape(shape))
        raise WeightShapeError(
            f"{self.source}: weight '{name}' has shape {list(array.shape)} "
            f"({array.size} values), but the network needs {list(shape)} "
            f"({int(np.prod(shape, dtype=np.int64))} values)"
        )

    def pin(self, array: np.ndarray) -> np.ndarray:
        """Keep ``array`` alive as long as these weights; returns it (contiguous)."""
        array = np.ascontiguousarray(array)
        self._pinned.append(array)
        return array


def _without_ones(shape: Sequence[int]) -> tuple[int, ...]:
    return tuple(int(d) for d in shape if d != 1)


def _preview(names: list[str], limit: int = 20) -> str:
    if not names:
        return "no weights at all"
    shown = ", ".join(names[:limit])
    more = f", … ({len(names) - limit} more)" if len(names) > limit else ""
    return f"{len(names)} weights: {shown}{more}"


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """Arrays of a numpy ``.npz`` archive, each checked from its header before it is read
    (pickled object arrays are refused)."""
    from trtimport.core import input_files

    return input_files.load_npz(path, what="weights archive")


def load_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Tensors of a ``.safetensors`` file (BF16 is converted to float32)."""
    data = path.read_bytes()
    if len(data) < 8:
        raise ModelParseError(f"{path}: too short for a .safetensors file (no header length)")
    (header_len,) = struct.unpack("<Q", data[:8])
    if 8 + header_len > len(data):
        raise ModelParseError(
            f"{path}: header length {header_len} runs past the end of the file "
            f"({len(data)} bytes); the file is truncated"
        )
    try:
        header = json.loads(data[8 : 8 + header_len])
    except ValueError as err:
        raise ModelParseError(f"{path}: the .safetensors header is not valid JSON ({err})") from err
    if not isinstance(header, dict):
        raise ModelParseError(f"{path}: the .safetensors header is not a JSON object")
    body = memoryview(data)[8 + header_len :]
    arrays: dict[str, np.ndarray] = {}
    problems = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype_name = info["dtype"]
            shape = tuple(int(d) for d in info["shape"])
            begin, end = (int(x) for x in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            problems.append(f"'{name}': entry lacks dtype, shape or data_offsets")
            continue
        dtype = _SAFETENSORS_DTYPES.get(dtype_name)
        if dtype is None:
            problems.append(
                f"'{name}': dtype {dtype_name} is not supported "
                f"(supported: {', '.join(_SAFETENSORS_DTYPES)})"
            )
            continue
        count = int(np.prod(shape, dtype=np.int64))
        if not 0 <= begin <= end <= len(body) or end - begin != count * np.dtype(dtype).itemsize:
            problems.append(
                f"'{name}': data_offsets [{begin}, {end}] do not fit {dtype_name} {list(shape)} "
                f"in {len(body)} data bytes"
            )
            continue
        array = np.frombuffer(body[begin:end], dtype=dtype).reshape(shape)
        arrays[name] = bfloat16_bits_to_float32(array) if dtype_name == "BF16" else array
    if problems:
        raise ModelParseError(f"{path}: cannot read every tensor", problems)
    return arrays


def load_wts(path: Path) -> dict[str, np.ndarray]:
    """Weights of a tensorrtx ``.wts`` text file: ``name count hex32 hex32 …`` per line.

    Each value is the big-endian hex of an IEEE float32; arrays are flat (the script's
    ``shape=`` gives them their shape).
    """
    try:
        lines = path.read_text(encoding="ascii").splitlines()
    except UnicodeDecodeError as err:
        raise ModelParseError(f"{path}: a .wts file is ASCII text ({err})") from err
    lines = [line for line in lines if line.strip()]
    if not lines:
        raise ModelParseError(f"{path}:1: empty file; a .wts file starts with the weight count")
    try:
        expected = int(lines[0].strip())
    except ValueError as err:
        raise ModelParseError(
            f"{path}:1: the first line must be the number of weights, found {lines[0][:40]!r}"
        ) from err
    arrays: dict[str, np.ndarray] = {}
    for lineno, line in enumerate(lines[1:], start=2):
        parts = line.split()
        if len(parts) < 2 or not parts[1].isdigit():
            raise ModelParseError(f"{path}:{lineno}: expected 'NAME COUNT HEX…', got {line[:60]!r}")
        name, count, words = parts[0], int(parts[1]), parts[2:]
        if len(words) != count:
            raise ModelParseError(
                f"{path}:{lineno}: weight '{name}' declares {count} values but has {len(words)}"
            )
        try:
            raw = bytes.fromhex("".join(w.rjust(8, "0") for w in words))
        except ValueError as err:
            raise ModelParseError(f"{path}:{lineno}: weight '{name}': bad hex ({err})") from err
        arrays[name] = np.frombuffer(raw, dtype=">f4").astype(np.float32)
    if len(arrays) != expected:
        raise ModelParseError(
            f"{path}: the header announces {expected} weights but the file has {len(arrays)}; "
            "it may be truncated"
        )
    return arrays


def load_caffemodel(path: Path) -> dict[str, np.ndarray]:
    """Blobs of a Caffe ``.caffemodel``, named ``<layer>/<blob index>`` (``conv1/0``)."""
    try:
        from trtimport.importers.caffe.parse import load_caffe
    except ImportError as err:
        raise TrtImportError(
            f"{path}: reading .caffemodel weights needs trtimport's Caffe importer "
            "(trtimport.importers.caffe), which this installation lacks"
        ) from err
    net = load_caffe(None, path)
    return {
        f"{layer}/{i}": np.ascontiguousarray(blob)
        for layer, blobs in net.weights.items()
        for i, blob in enumerate(blobs)
    }


#: File suffix -> loader.
LOADERS: dict[str, Callable[[Path], dict[str, np.ndarray]]] = {
    ".npz": load_npz,
    ".safetensors": load_safetensors,
    ".wts": load_wts,
    ".caffemodel": load_caffemodel,
    ".onnx": load_initializers,
}


def load_weights(path: str | Path | None) -> Weights:
    """Load a weights file by its suffix; ``None`` gives an empty mapping."""
    if path is None:
        return Weights({}, "no --weights file")
    path = Path(path)
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        raise UsageError(
            f"{path}: unknown weights format '{path.suffix}'; use one of {', '.join(LOADERS)}"
        )
    if not path.is_file():
        raise UsageError(f"{path}: no such weights file")
    return Weights(loader(path), str(path))
