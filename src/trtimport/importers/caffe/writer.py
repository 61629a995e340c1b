"""Write an ONNX model file without ever holding a ModelProto with all the weights.

The small parts (the model header, the graph's nodes and inputs/outputs, each initializer's
name/dims/type) are serialized with the onnx stubs; each initializer's ``raw_data`` is written
straight from its numpy buffer. Fields are emitted in field-number order, so for a model under
the 2 GB protobuf limit the file is byte-identical to ``ModelProto.SerializeToString()`` of the
same model. Larger models keep the weights in a side file (ONNX external data) next to it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from trtimport.core.files import atomic_path
from trtimport.importers.caffe.weights import file_region
from trtimport.onnxtools.protowire import encode_varint as _varint
from trtimport.onnxtools.protowire import split_at_field

if TYPE_CHECKING:
    import onnx

# Field numbers (onnx.proto).
MODEL_GRAPH = 7
GRAPH_INITIALIZER = 5
TENSOR_RAW_DATA = 9

#: Protobuf refuses messages of 2 GiB or more; stay clear of it.
INLINE_LIMIT = (1 << 31) - (1 << 24)
#: Offsets of tensors in an external data file are aligned for memory mapping.
EXTERNAL_ALIGNMENT = 4096
#: Tensors smaller than this stay inline even in external-data mode (shape constants must be
#: readable by shape inference without the side file).
EXTERNAL_MIN_BYTES = 1024
#: Strided (non-contiguous) arrays are copied and written in blocks of about this size.
COPY_CHUNK = 1 << 20


@dataclass
class OnnxFiles:
    """What :func:`write_onnx` wrote."""

    model: Path
    external_data: Path | None
    bytes_written: int


def write_onnx(
    dest: Path,
    graph: onnx.GraphProto,
    initializers: Mapping[str, np.ndarray],
    opset: int,
    producer: str,
    *,
    producer_version: str = "",
    ir_version: int | None = None,
    extra_opsets: Mapping[str, int] | None = None,
    doc_string: str = "",
    metadata: Mapping[str, str] | None = None,
    max_inline_bytes: int = INLINE_LIMIT,
) -> OnnxFiles:
    """Stream an ONNX model to ``dest`` atomically; ``initializers`` are added to ``graph``.

    ``graph`` holds nodes, inputs, outputs and value infos (and no large initializers).
    ``initializers`` are written in the given order. If the model would exceed
    ``max_inline_bytes``, the initializers of 1 KiB or more go to ``<dest name>.data`` beside
    ``dest`` (ONNX external data with a relative location) and the model file stays small.
    """
    import onnx

    dest = Path(dest)
    opsets = {"": opset, **(extra_opsets or {})}
    header = onnx.ModelProto(
        producer_name=producer,
        opset_import=[onnx.helper.make_opsetid(domain, v) for domain, v in opsets.items()],
    )
    # proto2 fields have presence: set only what is given, like onnx.helper does.
    if producer_version:
        header.producer_version = producer_version
    if doc_string:
        header.doc_string = doc_string
    header.ir_version = (
        ir_version
        if ir_version is not None
        else onnx.helper.find_min_ir_version_for(list(header.opset_import), True)
    )
    for key, value in (metadata or {}).items():
        header.metadata_props.add(key=key, value=value)
    arrays = {name: _little_endian(name, array) for name, array in initializers.items()}
    model_before, model_after = split_at_field(header.SerializeToString(), MODEL_GRAPH)
    graph_before, graph_after = split_at_field(graph.SerializeToString(), GRAPH_INITIALIZER)
    inline_size = sum(array.nbytes for array in arrays.values())
    external = inline_size + len(graph_before) + len(graph_after) > max_inline_bytes
    data_path = dest.with_name(dest.name + ".data") if external else None

    with contextlib.ExitStack() as stack:
        tmp_data = stack.enter_context(atomic_path(data_path)) if data_path is not None else None
        tmp_model = stack.enter_context(atomic_path(dest))
        if tmp_data is not None and data_path is not None:
            with tmp_data.open("wb") as data_file:
                entries = list(_external_entries(arrays, data_path.name, data_file))
        else:
            entries = [_inline_entry(name, array) for name, array in arrays.items()]
        graph_size = len(graph_before) + len(graph_after)
        graph_size += sum(
            len(head) + (raw.nbytes if raw is not None else 0) for head, raw in entries
        )
        with tmp_model.open("wb") as out:
            out.write(model_before)
            out.write(_key(MODEL_GRAPH) + _varint(graph_size))
            out.write(graph_before)
            for head, raw in entries:
                out.write(head)
                if raw is not None:
                    _write_array(out, raw)
            out.write(graph_after)
            out.write(model_after)
            written = out.tell()
    return OnnxFiles(dest, data_path, written)


def _little_endian(name: str, array: np.ndarray) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype.kind not in "biuf":
        raise TypeError(
            f"initializer '{name}' has dtype {array.dtype}; only numbers can be raw data"
        )
    return np.asarray(array, dtype=array.dtype.newbyteorder("<"))


def _write_array(out: BinaryIO, array: np.ndarray) -> None:
    """Write the array's bytes in C order without copying it whole.

    A view of a mapped caffemodel is copied file-to-file by the kernel (its pages are never
    read into this process); another contiguous array is written straight from its buffer; a
    strided view (a transpose, say) is written in row blocks of about ``COPY_CHUNK`` bytes.
    """
    region = file_region(array)
    if region is not None:
        _copy_from_file(out, *region, array)
        return
    if array.ndim == 0 or array.flags.c_contiguous:
        out.write(raw_view(array))
        return
    rows = max(1, COPY_CHUNK // max(1, array[0].nbytes))
    for start in range(0, array.shape[0], rows):
        out.write(raw_view(np.ascontiguousarray(array[start : start + rows])))


def _copy_from_file(out: BinaryIO, source: Path, offset: int, array: np.ndarray) -> None:
    """Append ``array.nbytes`` bytes of ``source`` from ``offset`` to ``out`` with sendfile.

    Falls back to writing from the array for whatever the kernel did not copy (a platform or
    file system without file-to-file sendfile).
    """
    out.flush()
    done = 0
    try:
        with source.open("rb") as src:
            while done < array.nbytes:
                sent = os.sendfile(out.fileno(), src.fileno(), offset + done, array.nbytes - done)
                if sent == 0:
                    break
                done += sent
    except (OSError, AttributeError):
        pass  # AttributeError: no os.sendfile on this platform
    out.seek(0, os.SEEK_END)
    if done < array.nbytes:
        out.write(raw_view(array)[done:])


def raw_view(array: np.ndarray) -> memoryview:
    """The bytes of a C-contiguous array, without copying."""
    return array.reshape(-1).data.cast("B")


def _tensor_header(name: str, array: np.ndarray) -> onnx.TensorProto:
    import onnx

    tensor = onnx.TensorProto(name=name, dims=array.shape)
    tensor.data_type = onnx.helper.np_dtype_to_tensor_dtype(array.dtype)
    return tensor


def _inline_entry(name: str, array: np.ndarray) -> tuple[bytes, np.ndarray]:
    """The bytes of ``initializer { dims data_type name raw_data: <len> }`` up to the data."""
    head = _tensor_header(name, array).SerializeToString()
    raw_key = _key(TENSOR_RAW_DATA) + _varint(array.nbytes)
    tensor_size = len(head) + len(raw_key) + array.nbytes
    return _key(GRAPH_INITIALIZER) + _varint(tensor_size) + head + raw_key, array


def _external_entries(
    arrays: Mapping[str, np.ndarray], location: str, data_file: BinaryIO
) -> Iterator[tuple[bytes, np.ndarray | None]]:
    import onnx

    offset = 0
    for name, array in arrays.items():
        if array.nbytes < EXTERNAL_MIN_BYTES:
            yield _inline_entry(name, array)
            continue
        padding = -offset % EXTERNAL_ALIGNMENT
        data_file.write(b"\0" * padding)
        offset += padding
        _write_array(data_file, array)
        tensor = _tensor_header(name, array)
        tensor.data_location = onnx.TensorProto.EXTERNAL
        for key, value in (("location", location), ("offset", offset), ("length", array.nbytes)):
            tensor.external_data.add(key=key, value=str(value))
        offset += array.nbytes
        body = tensor.SerializeToString()
        yield _key(GRAPH_INITIALIZER) + _varint(len(body)) + body, None


def _key(number: int) -> bytes:
    return _varint(number << 3 | 2)
