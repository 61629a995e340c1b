"""Save an ONNX model as a file that stands alone, without loading it.

An ONNX file may keep its weights elsewhere (external data: a location relative to the model's
folder, an offset and a length). The Caffe importer's intermediate model does so on purpose:
its weights stay in the caffemodel, so TensorRT's parser reads them with no copy written.
``--save-onnx`` must give the user a model that works on its own, so :func:`save_standalone`
rewrites the model at the protobuf wire level: every externally stored tensor gets its bytes
back as ``raw_data``, copied file to file by the kernel, and every other byte is copied as it
is. The result is the file ``onnx.save`` would write for the loaded model, without a
``ModelProto`` (and its copy of every weight) in memory. A model that would reach ONNX's 2 GB
protobuf limit keeps external data instead: all of it in one ``<name>.data`` file beside the
saved model, with the locations rewritten.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from trtimport.core.files import atomic_path
from trtimport.errors import ModelParseError
from trtimport.onnxtools.external_data import (
    CHILDREN,
    LOCATION_EXTERNAL,
    TENSOR_DATA_LOCATION,
    TENSOR_EXTERNAL_DATA,
    TENSOR_NAME,
)
from trtimport.onnxtools.protowire import LEN, VARINT, WireError, encode_varint, iter_fields

#: Protobuf refuses messages of 2 GiB or more; stay clear of it (as the Caffe writer does).
INLINE_LIMIT = (1 << 31) - (1 << 24)
#: Offsets of tensors in the external data file are aligned for memory mapping.
ALIGNMENT = 4096
_RAW_DATA = 9


@dataclass(frozen=True)
class _Region:
    """``length`` bytes of ``path`` from ``offset``: a tensor's data in an external file."""

    path: Path
    offset: int
    length: int


#: Output: new bytes, a ``(start, end)`` span of the model file, or an external region.
_Piece = bytes | tuple[int, int] | _Region


def _len_field(number: int, pieces: list[_Piece], size: int) -> tuple[list[_Piece], int]:
    head = encode_varint(number << 3 | LEN) + encode_varint(size)
    return [head, *pieces], len(head) + size


class _Rewriter:
    """Rebuilds the messages that hold external tensors; ``inline`` picks what they become."""

    def __init__(self, buf: memoryview, folder: Path, inline: bool, data_name: str) -> None:
        self.buf = buf
        self.folder = folder
        self.inline = inline
        self.data_name = data_name
        #: External mode: the regions to copy into the data file, at their new offsets.
        self.data: list[tuple[int, _Region]] = []
        self.data_size = 0

    def message(self, kind: str, start: int, end: int) -> tuple[list[_Piece], int, bool]:
        """(pieces, size, changed) of one message; an unchanged one is its own bytes."""
        if kind == "tensor":
            return self.tensor(start, end)
        children = CHILDREN[kind]
        pieces: list[_Piece] = []
        size = 0
        changed = False
        copied_to = start
        for number, wire, value, field_start, field_end in iter_fields(self.buf, start, end):
            if wire != LEN or number not in children:
                continue
            sub, sub_size, sub_changed = self.message(children[number], value, field_end)
            if not sub_changed:
                continue
            changed = True
            pieces.append((copied_to, field_start))
            size += field_start - copied_to
            field, field_size = _len_field(number, sub, sub_size)
            pieces += field
            size += field_size
            copied_to = field_end
        if not changed:
            return [(start, end)], end - start, False
        pieces.append((copied_to, end))
        return pieces, size + end - copied_to, True

    def tensor(self, start: int, end: int) -> tuple[list[_Piece], int, bool]:
        """A tensor: an external one gets its data inline, or a place in the new data file."""
        fields = list(iter_fields(self.buf, start, end))
        external = any(
            n == TENSOR_DATA_LOCATION and w == VARINT and v == LOCATION_EXTERNAL
            for n, w, v, _, _ in fields
        )
        if not external:
            return [(start, end)], end - start, False
        region = self.region(fields)
        if self.inline:
            number = _RAW_DATA
            new, new_size = _len_field(_RAW_DATA, [region], region.length)
        else:
            number = TENSOR_EXTERNAL_DATA
            self.data_size += -self.data_size % ALIGNMENT
            self.data.append((self.data_size, region))
            entry = b"".join(
                _string_field(TENSOR_EXTERNAL_DATA, _string_field(1, key) + _string_field(2, value))
                for key, value in (
                    ("location", self.data_name),
                    ("offset", str(self.data_size)),
                    ("length", str(region.length)),
                )
            )
            entry += encode_varint(TENSOR_DATA_LOCATION << 3 | VARINT)
            entry += encode_varint(LOCATION_EXTERNAL)
            new, new_size = [entry], len(entry)
            self.data_size += region.length
        # Every other field as it is; the new ones where their number puts them.
        pieces: list[_Piece] = []
        size = 0
        for n, _, _, a, b in fields:
            if n in (TENSOR_EXTERNAL_DATA, TENSOR_DATA_LOCATION):
                continue
            if new and n > number:
                pieces += new
                size += new_size
                new = []
            pieces.append((a, b))
            size += b - a
        pieces += new
        return pieces, size + (new_size if new else 0), True

    def region(self, fields: list[tuple[int, int, int, int, int]]) -> _Region:
        """Where a tensor's external data lies, checked to be inside its file."""
        entry: dict[str, str] = {}
        name = ""
        for number, wire, value, _, end in fields:
            if number == TENSOR_NAME and wire == LEN:
                name = bytes(self.buf[value:end]).decode(errors="replace")
            if number == TENSOR_EXTERNAL_DATA and wire == LEN:
                parts = {
                    n: bytes(self.buf[v:e]).decode(errors="replace")
                    for n, w, v, _, e in iter_fields(self.buf, value, end)
                    if w == LEN
                }
                entry[parts.get(1, "")] = parts.get(2, "")
        path = self.folder / entry.get("location", "")
        try:
            offset = int(entry.get("offset", "0"))
            file_size = path.stat().st_size
            length = int(entry["length"]) if "length" in entry else file_size - offset
        except (OSError, ValueError) as err:
            raise ModelParseError(
                f"tensor '{name}': cannot read its external data {entry} ({err})"
            ) from err
        if offset < 0 or length < 0 or offset + length > file_size:
            raise ModelParseError(
                f"tensor '{name}': its external data ({length} bytes from offset {offset}) "
                f"passes the end of {path} ({file_size} bytes)"
            )
        return _Region(path, offset, length)


def _string_field(number: int, text: str | bytes) -> bytes:
    data = text.encode() if isinstance(text, str) else text
    return encode_varint(number << 3 | LEN) + encode_varint(len(data)) + data


def _copy_region(out: BinaryIO, region: _Region) -> None:
    """Append a file region to ``out``: by ``sendfile`` where it can, else by reading it."""
    out.flush()
    done = 0
    with region.path.open("rb") as src:
        with contextlib.suppress(OSError, AttributeError):  # no file-to-file sendfile here
            while done < region.length:
                sent = os.sendfile(
                    out.fileno(), src.fileno(), region.offset + done, region.length - done
                )
                if sent == 0:
                    break
                done += sent
        out.seek(0, os.SEEK_END)
        src.seek(region.offset + done)
        while done < region.length:
            chunk = src.read(min(1 << 20, region.length - done))
            if not chunk:
                raise ModelParseError(f"{region.path}: the file ended while it was copied")
            out.write(chunk)
            done += len(chunk)


def _write_pieces(out: BinaryIO, buf: memoryview, pieces: Iterable[_Piece]) -> None:
    for piece in pieces:
        if isinstance(piece, _Region):
            _copy_region(out, piece)
        elif isinstance(piece, tuple):
            out.write(buf[piece[0] : piece[1]])
        else:
            out.write(piece)


@contextlib.contextmanager
def standalone_onnx(
    model: Path, dest: Path, *, max_inline_bytes: int = INLINE_LIMIT
) -> Iterator[list[Path]]:
    """Write ``model`` to ``dest`` with its external data taken in; yields the files written.

    They are ``dest``, and ``<dest name>.data`` when the weights stay outside because the model
    would otherwise pass ``max_inline_bytes`` (ONNX's 2 GB limit). A model with no external
    data is copied as it is. The files are written as temporary files and moved into place
    when the ``with`` block ends without an error; after an error nothing is left.
    """
    model, dest = Path(model), Path(dest)
    if model.stat().st_size == 0:
        raise ModelParseError(f"{model}: the ONNX file is empty")
    with contextlib.ExitStack() as stack:
        with model.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            buf = memoryview(mapped)
            try:
                written = _save(stack, buf, model, dest, max_inline_bytes)
            except WireError as err:
                raise ModelParseError(f"{model}: not a valid ONNX model ({err})") from err
            finally:
                buf.release()
        yield written


def _save(
    stack: contextlib.ExitStack, buf: memoryview, model: Path, dest: Path, max_inline_bytes: int
) -> list[Path]:
    """Write the files into temporary paths that ``stack`` moves into place."""
    folder = model.absolute().parent
    data_name = dest.name + ".data"
    rewriter = _Rewriter(buf, folder, True, data_name)
    pieces, size, changed = rewriter.message("model", 0, len(buf))
    tmp = stack.enter_context(atomic_path(dest))
    if not changed:
        shutil.copyfile(model, tmp)
        return [dest]
    if size > max_inline_bytes:
        rewriter = _Rewriter(buf, folder, False, data_name)
        pieces, size, _ = rewriter.message("model", 0, len(buf))
        data_path = dest.with_name(data_name)
        with stack.enter_context(atomic_path(data_path)).open("wb") as data:
            for offset, region in rewriter.data:
                data.write(b"\0" * (offset - data.tell()))
                _copy_region(data, region)
    with tmp.open("wb") as out:
        _write_pieces(out, buf, pieces)
    return [dest, data_path] if size > max_inline_bytes else [dest]
