"""The shared base of every importer that goes through ONNX: convert, prepare, parse."""

from __future__ import annotations

from pathlib import Path

from trtimport.core.importer import ImportContext, Importer


class OnnxBasedImporter(Importer):
    """Base of importers that produce an ONNX model and hand it to TensorRT's ONNX parser."""

    def to_onnx(self, ctx: ImportContext, dest: Path) -> Path:
        """Write the model as ONNX at ``dest`` (or return an existing ONNX file's path)."""
        raise NotImplementedError

    def populate(self, ctx: ImportContext) -> None:
        """Convert to ONNX, prepare it, and parse it into the network."""
        self.parse_onnx(ctx, self.to_onnx(ctx, ctx.workdir / f"{ctx.source.stem or 'model'}.onnx"))

    @staticmethod
    def parse_onnx(ctx: ImportContext, onnx_path: Path) -> None:
        """Check and rewrite ``onnx_path`` as the options ask, then parse it into the network."""
        from trtimport.errors import ModelParseError
        from trtimport.onnxtools.parse import parse_onnx_into, prepare_onnx

        ctx.onnx_path = prepare_onnx(ctx, onnx_path)
        try:
            parse_onnx_into(ctx, ctx.onnx_path)
        except ModelParseError as err:
            if not err.problems:  # not a refusal: the file itself is bad
                raise
            from trtimport.onnxtools.rescue import rescue

            rescue(ctx, err, shapes=dict(ctx.options.input_shapes))
