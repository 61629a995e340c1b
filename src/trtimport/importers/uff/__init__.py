"""The UFF importer: NVIDIA's Universal Framework Format (``.uff``) -> ONNX -> TensorRT.

UFF files were how TensorFlow 1.x graphs reached TensorRT 3-7 through its UffParser, which
TensorRT 10 removed. trtimport reads them with its own schema (``proto/uff.proto``), converts
each op to ONNX (never importing TensorFlow), and hands the ONNX model to TensorRT's ONNX parser
like every ONNX-based importer. This module is a plugin like any third-party one; parsing and
conversion modules load only when a model is converted.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from trtimport.core.importer import ImportContext, Importer
from trtimport.errors import UsageError
from trtimport.importers.base import OnnxBasedImporter
from trtimport.importers.tensorflow.options import TensorFlowOptions
from trtimport.plugins.hookspecs import hookimpl

if TYPE_CHECKING:
    from trtimport.core.options import ImportOptions
    from trtimport.core.runner import Runner
    from trtimport.importers.uff.context import Request


def twin_graph(source: Path) -> Path | None:
    """The TensorFlow frozen graph the UFF was converted from, when it lies beside it
    (``model.uff`` -> ``model.pb``)."""
    candidate = source.with_suffix(".pb")
    return candidate if candidate.is_file() else None


def request_for(options: ImportOptions) -> Request:
    """The conversion request the import options make."""
    from trtimport.importers.uff.context import Request
    from trtimport.importers.uff.convert import DEFAULT_OPSET

    return Request(
        opset=DEFAULT_OPSET if options.opset is None else int(options.opset),
        outputs=list(options.outputs),
        input_shapes=dict(options.input_shapes),
        dynamic_inputs={name for profile in options.profiles for name in profile},
        inputs_as_nchw=set(options.importer_options_for(TensorFlowOptions).inputs_as_nchw),
    )


class UffImporter(OnnxBasedImporter):
    """UFF files written by NVIDIA's ``uff`` converter (TensorRT 3-7)."""

    name = "uff"
    description = "UFF (TensorRT 3-7 UffParser format, from TensorFlow 1.x), converted to ONNX"
    extensions = (".uff",)
    options_class = TensorFlowOptions

    def detect(self, path: Path, head: bytes) -> bool:
        """Claim files whose content is a serialized UFF MetaGraph."""
        from trtimport.importers.uff.sniff import looks_like_uff  # only when sniffing

        return path.is_file() and looks_like_uff(head)

    def to_onnx(self, ctx: ImportContext, dest: Path) -> Path:
        """Read the UFF and write it as ONNX at ``dest``, its weights referring to the UFF."""
        from trtimport.importers.uff.convert import uff_to_onnx
        from trtimport.importers.uff.model import load_uff

        model = load_uff(ctx.source)
        # The parser reads the weights from the UFF file itself: no copy of them is written.
        done = uff_to_onnx(model, dest, request_for(ctx.options), link_weights=True)
        ctx.note(f"converted UFF graph '{model.graph}' to ONNX opset {done.opset}")
        return dest

    def reference_runner(self, source: Path, options: ImportOptions) -> Runner | None:
        """TensorFlow running the frozen graph the UFF came from (``NAME.pb`` beside it)."""
        twin = twin_graph(source)
        if twin is None:
            raise UsageError(
                f"{source}: a UFF file has no runtime of its own to verify against; put the "
                f"TensorFlow frozen graph it was converted from beside it as "
                f"{source.with_suffix('.pb').name}"
            )
        from trtimport.importers.tensorflow.runner import NchwInputs
        from trtimport.importers.uff.reference import TwinGraphRunner

        request = request_for(options)
        inner = TwinGraphRunner(twin, request.outputs or None, source)
        nchw = sorted(request.inputs_as_nchw)
        return NchwInputs(inner, nchw) if nchw else inner


@hookimpl
def trtimport_register_importers(register: Callable[[Importer], None]) -> None:
    """Register the UFF importer."""
    register(UffImporter())
