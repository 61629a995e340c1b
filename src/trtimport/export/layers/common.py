"""What every converter shares: the converter tables and small helpers on layers and tensors."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from trtimport.errors import UnsupportedLayerError

if TYPE_CHECKING:
    from trtimport.export.graph import GraphWriter

#: Writes the ONNX nodes of one TensorRT layer (already cast to its subclass).
Converter = Callable[["GraphWriter", Any], None]

INT64_MIN = np.iinfo(np.int64).min


class Converters:
    """One family's table: TensorRT LayerType name -> converter. A type registers only once."""

    def __init__(self) -> None:
        self.table: dict[str, Converter] = {}

    def converts(self, *kinds: str) -> Callable[[Converter], Converter]:
        """Decorator: ``fn`` converts layers of types ``kinds``."""

        def register(fn: Converter) -> Converter:
            for kind in kinds:
                if kind in self.table:
                    raise ValueError(f"two exporters for {kind}")
                self.table[kind] = fn
            return fn

        return register


def inp(layer: Any, i: int) -> str | None:
    """Name of input ``i`` (None when absent)."""
    if i >= layer.num_inputs:
        return None
    t = layer.get_input(i)
    return None if t is None else str(t.name)


def out(layer: Any, i: int = 0) -> str:
    """Name of output ``i``."""
    return str(layer.get_output(i).name)


def rank_of(layer: Any, i: int = 0) -> int:
    """Rank of input ``i``."""
    return len(layer.get_input(i).shape)


def shape_of(tensor: Any) -> tuple[int, ...]:
    """A tensor's dimensions (-1 for dynamic)."""
    return tuple(int(d) for d in tensor.shape)


def dims(value: Any, n: int | None = None) -> list[int]:
    """A Dims/Permutation attribute as a list (first ``n`` entries of a Permutation)."""
    values = [int(v) for v in value]
    return values if n is None else values[:n]


def axes_of(mask: int, rank: int) -> list[int]:
    """A TensorRT axes bitmask as a list of axes."""
    return [a for a in range(rank) if mask & (1 << a)]


def weights_array(w: Any) -> np.ndarray:
    """A layer's Weights attribute as a numpy array (empty when unset)."""
    if w is None:
        return np.zeros(0, np.float32)
    return np.asarray(w)


def dtype_np(g: GraphWriter, trt_dtype: Any) -> Any:
    """numpy dtype for a TensorRT DataType."""
    try:
        return np.dtype(g.trt.nptype(trt_dtype))
    except TypeError as err:
        raise unsupported(f"data type {trt_dtype.name} has no numpy equivalent") from err


def as_int64(g: GraphWriter, layer: Any, tensor: str, dtype: Any) -> str:
    """Cast an index/shape tensor to int64 unless it already is."""
    if str(getattr(dtype, "name", dtype)).upper().endswith("INT64"):
        return tensor
    return g.cast(tensor, g.onnx.TensorProto.INT64, f"{layer.name}/to_int64")


def in_int64(g: GraphWriter, layer: Any, i: int) -> str:
    """Input ``i`` as int64."""
    return as_int64(g, layer, str(inp(layer, i)), layer.get_input(i).dtype)


def unsupported(reason: str) -> UnsupportedLayerError:
    """The error a converter raises for a variant ONNX cannot express."""
    return UnsupportedLayerError(reason)


def scalar(g: GraphWriter, layer: Any, value: float, hint: str) -> str:
    """A scalar constant in the dtype of the layer's first input."""
    return g.const(np.asarray(value, dtype=dtype_np(g, layer.get_input(0).dtype)), hint)
