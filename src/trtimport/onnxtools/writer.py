"""Write an ONNX model file without ever holding a ModelProto with all the weights.

The small parts (the model header, the graph's nodes and inputs/outputs, each initializer's
name/dims/type) are encoded by :mod:`trtimport.onnxtools.encode`, without the ``onnx`` package;
each initializer's ``raw_data`` is written straight from its numpy buffer. Fields are emitted
in field-number order, so for a model under the 2 GB protobuf limit the file is byte-identical
to ``ModelProto.SerializeToString()`` of the same model. Larger models keep the weights in a
side file (ONNX external data) next to it.
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
from trtimport.onnxtools import encode
from trtimport.onnxtools.mapped import file_region
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
    graph: onnx.GraphProto | bytes,
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
    link_mapped: bool = False,
) -> OnnxFiles:
    """Stream an ONNX model to ``dest`` atomically; ``initializers`` are added to ``graph``.

    ``graph`` (a ``GraphProto`` or its bytes, :func:`trtimport.onnxtools.encode.graph`) holds
    nodes, inputs, outputs and value infos (and no large initializers).
    ``initializers`` are written in the given order. If the model would exceed
    ``max_inline_bytes``, the initializers of 1 KiB or more go to ``<dest name>.data`` beside
    ``dest`` (ONNX external data with a relative location) and the model file stays small.

    ``link_mapped=True`` (for intermediate files that TensorRT's parser reads) copies no
    weights that view a mapped file (:mod:`.mapped`: a caffemodel's blobs, a UFF's weights):
    the model refers to them where they lie, as external data in that file, through a symbolic
    link beside ``dest``.
    """
    dest = Path(dest)
    opsets = {"": opset, **(extra_opsets or {})}
    if ir_version is None:
        ir_version = encode.min_ir_version(opsets)
    if ir_version is None:  # a domain this module has no table for
        from onnx import helper

        ir_version = helper.find_min_ir_version_for(
            [helper.make_opsetid(domain, v) for domain, v in opsets.items()], True
        )
    model_before, model_after = encode.model_header(
        opsets,
        producer,
        producer_version=producer_version,
        ir_version=ir_version,
        doc_string=doc_string,
        metadata=metadata,
    )
    arrays = {name: _little_endian(name, array) for name, array in initializers.items()}
    graph_bytes = graph if isinstance(graph, bytes) else graph.SerializeToString()
    graph_before, graph_after = split_at_field(graph_bytes, GRAPH_INITIALIZER)
    linked = _link_mapped_files(arrays, dest) if link_mapped else {}
    inline_size = sum(array.nbytes for name, array in arrays.items() if name not in linked)
    external = inline_size + len(graph_before) + len(graph_after) > max_inline_bytes
    data_path = dest.with_name(dest.name + ".data") if external else None

    with contextlib.ExitStack() as stack:
        tmp_data = stack.enter_context(atomic_path(data_path)) if data_path is not None else None
        tmp_model = stack.enter_context(atomic_path(dest))
        data_file = stack.enter_context(tmp_data.open("wb")) if tmp_data is not None else None
        entries = list(_entries(arrays, linked, data_file, dest.name + ".data"))
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


def _inline_entry(name: str, array: np.ndarray) -> tuple[bytes, np.ndarray]:
    """The bytes of ``initializer { dims data_type name raw_data: <len> }`` up to the data."""
    head = encode.tensor_header(name, array.shape, encode.data_type(array.dtype))
    raw_key = _key(TENSOR_RAW_DATA) + _varint(array.nbytes)
    tensor_size = len(head) + len(raw_key) + array.nbytes
    return _key(GRAPH_INITIALIZER) + _varint(tensor_size) + head + raw_key, array


def _link_mapped_files(arrays: Mapping[str, np.ndarray], dest: Path) -> dict[str, tuple[str, int]]:
    """Link each mapped file that arrays of 1 KiB or more view beside ``dest``.

    Returns, per such array, the link's name (its external-data location) and the array's
    offset in the file. The link's target is absolute, so the folder can be copied with it.
    """
    links: dict[Path, str] = {}
    linked: dict[str, tuple[str, int]] = {}
    for name, array in arrays.items():
        region = file_region(array) if array.nbytes >= EXTERNAL_MIN_BYTES else None
        if region is None:
            continue
        source, offset = region
        if source not in links:
            links[source] = f"{dest.name}.weights{len(links)}{source.suffix}"
            link = dest.with_name(links[source])
            with contextlib.suppress(FileNotFoundError):
                link.unlink()
            link.symlink_to(source.resolve())
        linked[name] = (links[source], offset)
    return linked


def _entries(
    arrays: Mapping[str, np.ndarray],
    linked: Mapping[str, tuple[str, int]],
    data_file: BinaryIO | None,
    data_location: str,
) -> Iterator[tuple[bytes, np.ndarray | None]]:
    """Each initializer's bytes up to its data, and the array to write after them (if any).

    Linked arrays refer to their file; with a ``data_file``, arrays of 1 KiB or more go there;
    the rest are inline.
    """
    offset = 0
    for name, array in arrays.items():
        if name in linked:
            yield _reference_entry(name, array, *linked[name]), None
        elif data_file is None or array.nbytes < EXTERNAL_MIN_BYTES:
            yield _inline_entry(name, array)
        else:
            padding = -offset % EXTERNAL_ALIGNMENT
            data_file.write(b"\0" * padding)
            offset += padding
            _write_array(data_file, array)
            yield _reference_entry(name, array, data_location, offset), None
            offset += array.nbytes


def _reference_entry(name: str, array: np.ndarray, location: str, offset: int) -> bytes:
    """An initializer whose data is ``array.nbytes`` bytes of ``location`` from ``offset``."""
    body = encode.tensor_header(name, array.shape, encode.data_type(array.dtype))
    body += encode.external_data(location, offset, array.nbytes)
    return _key(GRAPH_INITIALIZER) + _varint(len(body)) + body


def _key(number: int) -> bytes:
    return _varint(number << 3 | 2)
