"""The built-in ONNX importer: the file goes straight to TensorRT's ONNX parser."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from trtimport.core.importer import ImportContext, Importer
from trtimport.errors import ModelParseError
from trtimport.importers.base import OnnxBasedImporter
from trtimport.plugins.hookspecs import hookimpl

if TYPE_CHECKING:
    from trtimport.core.options import ImportOptions
    from trtimport.core.runner import Runner

# Field tags that may follow ir_version (field 1) in a serialized ModelProto.
_MODEL_FIELD_TAGS = {0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42, 0x72, 0x7A}


def looks_like_onnx(head: bytes) -> bool:
    """A ModelProto starts with ir_version (field 1, varint) followed by another model field."""
    if len(head) < 3:
        return False
    return head[0] == 0x08 and 1 <= head[1] <= 30 and head[2] in _MODEL_FIELD_TAGS


class OnnxImporter(OnnxBasedImporter):
    """ONNX models (``.onnx``), with external data in the model's folder."""

    name = "onnx"
    description = "ONNX model, parsed by TensorRT's ONNX parser"
    extensions = (".onnx",)

    def detect(self, path: Path, head: bytes) -> bool:
        """Claim serialized ONNX ModelProto files."""
        return path.is_file() and looks_like_onnx(head)

    def to_onnx(self, ctx: ImportContext, dest: Path) -> Path:
        """The model already is ONNX."""
        return ctx.source

    def populate(self, ctx: ImportContext) -> None:
        """Parse the file itself: with nothing to convert, no work folder is made."""
        if not ctx.source.is_file():
            raise ModelParseError(f"{ctx.source}: a folder, not an ONNX model file")
        self.parse_onnx(ctx, ctx.source)

    def reference_runner(self, source: Path, options: ImportOptions) -> Runner | None:
        """ONNX Runtime (CPU) on the model file itself."""
        from trtimport.runtime.onnxruntime import OnnxRuntimeRunner

        runner = OnnxRuntimeRunner(source)
        runner.label += " (reference)"
        return runner


@hookimpl
def trtimport_register_importers(register: Callable[[Importer], None]) -> None:
    """Register the ONNX importer."""
    register(OnnxImporter())
