"""The one table of element types (TensorRT, numpy-style and ONNX names) and bfloat16 bits.

numpy is imported only where used: converting an ONNX model imports none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

#: TensorRT DataType name -> (numpy-style name, ONNX ``TensorProto.DataType`` name).
DTYPES: dict[str, tuple[str, str]] = {
    "FLOAT": ("float32", "FLOAT"),
    "HALF": ("float16", "FLOAT16"),
    "BF16": ("bfloat16", "BFLOAT16"),
    "FP8": ("float8", "FLOAT8E4M3FN"),
    "INT8": ("int8", "INT8"),
    "INT32": ("int32", "INT32"),
    "INT64": ("int64", "INT64"),
    "UINT8": ("uint8", "UINT8"),
    "BOOL": ("bool", "BOOL"),
    "INT4": ("int4", "INT4"),
    "FP4": ("float4", "FLOAT4E2M1"),
}


def trt_dtype_key(dtype: Any) -> str:
    """A TensorRT DataType (or its name, ``DataType.HALF``) -> its table key (``HALF``)."""
    return str(getattr(dtype, "name", dtype)).split(".")[-1].upper()


def numpy_name(dtype: Any) -> str:
    """TensorRT DataType -> numpy-style name (``float32``); unknown types in lower case."""
    key = trt_dtype_key(dtype)
    return DTYPES[key][0] if key in DTYPES else key.lower()


def onnx_name(dtype: Any) -> str | None:
    """TensorRT DataType -> ONNX element type name (``FLOAT16``), None if ONNX has none."""
    entry = DTYPES.get(trt_dtype_key(dtype))
    return entry[1] if entry else None


def float32_to_bfloat16_bits(values: np.ndarray) -> np.ndarray:
    """Round float32 values to bfloat16 (to nearest, ties to even); returns the uint16 bits."""
    import numpy as np

    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    rounding = ((bits >> 16) & 1) + np.uint32(0x7FFF)
    rounded = ((bits + rounding) >> 16).astype(np.uint16)
    nan = np.isnan(values)
    rounded[nan] = 0x7FC0
    return rounded


def bfloat16_bits_to_float32(bits: np.ndarray) -> np.ndarray:
    """The float32 values of bfloat16 bit patterns (uint16)."""
    import numpy as np

    return (np.asarray(bits, dtype=np.uint32) << 16).view(np.float32)
