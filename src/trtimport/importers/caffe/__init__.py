"""The Caffe importer: deploy prototxt + caffemodel -> ONNX -> TensorRT's ONNX parser.

``trtimport model.caffemodel`` pairs the weights with the deploy prototxt beside them;
``trtimport deploy.prototxt --weights model.caffemodel`` names both. This module is a plugin like
any third-party one: it registers the importer, the built-in layer converters and the
``trtimport caffe`` command. It imports nothing heavy; parsing and conversion modules load when a
model is converted.

It is also the Caffe importer's documented Python API (docs/caffe.md): :data:`API` lists the
names, loaded on first use.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtimport.core.importer import ImportContext, Importer
from trtimport.errors import ModelParseError, UsageError
from trtimport.importers.base import OnnxBasedImporter
from trtimport.plugins.hookspecs import hookimpl

if TYPE_CHECKING:
    from trtimport.core.options import ImportOptions
    from trtimport.core.runner import Runner

#: The Caffe Python API: name -> the module that defines it (loaded on first use).
API = {
    "load_caffe": "trtimport.importers.caffe.parse",
    "caffe_to_onnx": "trtimport.importers.caffe.convert",
    "LayerContext": "trtimport.importers.caffe.registry",
    "Shape": "trtimport.importers.caffe.registry",
    "ShapeRange": "trtimport.core.options",
}


def __getattr__(name: str) -> Any:
    module_name = API.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module_name), name)


#: Why an engine cannot hold a converted layer, keyed by the ONNX op the parser rejected.
BUILD_LIMITS = {
    "MaxRoiPool": (
        "ROIPooling converts to ONNX MaxRoiPool, which ONNX Runtime runs exactly as Caffe does "
        "but TensorRT's ONNX parser has no importer for. No exact TensorRT formulation is "
        "practical: each region's bins have data-dependent bounds, so a masked max needs "
        "regions x channels x height x pooled width x width intermediate values (about 2 G for "
        "300 regions of a 512 x 38 x 50 map at 7 x 7). Get the ONNX file alone with the Python "
        "API caffe_to_onnx (docs/caffe.md), or cut the net before the layer with --output"
    ),
    "MaxPool": (
        "a MAX Pooling with a mask top (SegNet/ENet unpooling) whose windows overlap or are "
        "padded converts to ONNX MaxPool with its indices output, which TensorRT's ONNX parser "
        "rejects; only windows that tile the input (kernel = stride, no pad, as in SegNet and "
        "ENet) unpool with ops TensorRT builds. Get the ONNX file alone with caffe_to_onnx"
    ),
}


def _kind(path: Path) -> str:
    from trtimport.core.files import read_head
    from trtimport.importers.caffe.sniff import detect_caffe

    kind = detect_caffe(path, read_head(path))
    if kind is None:
        kind = "caffemodel" if path.suffix.lower() == ".caffemodel" else "prototxt"
    return kind


def model_files(source: Path, options: ImportOptions) -> tuple[Path, Path, str | None]:
    """(prototxt, caffemodel, note) for a source given as either file, plus ``--weights``."""
    from trtimport.importers.caffe.parse import find_deploy_prototxt

    if _kind(source) == "caffemodel":
        if options.weights is not None:
            raise UsageError(
                f"{source} is a caffemodel and --weights gives another one; pass the deploy "
                f"prototxt as the model: `trtimport DEPLOY.prototxt --weights {source}`"
            )
        prototxt, note = find_deploy_prototxt(source)
        return prototxt, source, note
    if options.weights is None:
        raise UsageError(_check_without_weights(source, options))
    return source, options.weights, None


def _check_without_weights(prototxt: Path, options: ImportOptions) -> str:
    """Check a prototxt given alone (raising every problem it has); then what to do."""
    from trtimport.importers.caffe.convert import check_caffe, weights_needed_message
    from trtimport.importers.caffe.inputs import override_input_shapes
    from trtimport.importers.caffe.parse import load_caffe

    model = load_caffe(prototxt, None)
    override_input_shapes(model, options.input_shapes)
    check_caffe(model, outputs=options.outputs, profiles=options.profiles)
    if model.requested_blobs:
        return weights_needed_message(model)
    return (
        f"{prototxt}: a prototxt holds no weights. Pass the trained weights with "
        f"--weights MODEL.caffemodel, or make seeded random weights to try the structure: "
        f"`trtimport caffe make-weights {prototxt} -o random.caffemodel --seed 0`"
    )


class CaffeImporter(OnnxBasedImporter):
    """Caffe deploy prototxts and caffemodels (BVLC and common forks)."""

    name = "caffe"
    description = "Caffe deploy prototxt + caffemodel, converted to ONNX"
    extensions = (".prototxt", ".caffemodel")
    takes_weights = True

    def detect(self, path: Path, head: bytes) -> bool:
        """Claim prototxt text and binary NetParameter files."""
        from trtimport.importers.caffe.sniff import detect_caffe

        return path.is_file() and detect_caffe(path, head) is not None

    def related_files(self, source: Path, options: ImportOptions) -> list[Path]:
        """The prototxt and the caffemodel."""
        prototxt, caffemodel, _ = model_files(source, options)
        return [prototxt, caffemodel]

    def to_onnx(self, ctx: ImportContext, dest: Path) -> Path:
        """Load the net and its weights, and convert them to ONNX at ``dest``."""
        from trtimport.importers.caffe.convert import caffe_to_onnx
        from trtimport.importers.caffe.inputs import override_input_shapes
        from trtimport.importers.caffe.parse import load_caffe

        prototxt, caffemodel, note = model_files(ctx.source, ctx.options)
        if note:
            ctx.note(note)
        model = load_caffe(prototxt, caffemodel)
        model.notes += override_input_shapes(model, ctx.options.input_shapes)
        for message in model.notes:
            ctx.note(message)

        # The parser reads the weights from the caffemodel itself: no copy of them is written.
        conversion = caffe_to_onnx(
            model,
            dest,
            ctx.options.opset,
            ctx.plugins,
            outputs=ctx.options.outputs,
            link_weights=True,
            profiles=ctx.options.profiles,
        )
        for name, dims in conversion.symbolic.items():
            if name in conversion.inputs:
                shown = ", ".join(map(str, dims))
                ctx.note(f"{ctx.source}: input '{name}' takes [{shown}] (its --shapes range)")
        return dest

    def populate(self, ctx: ImportContext) -> None:
        """Convert and parse; explain parser failures on ops TensorRT cannot import."""
        try:
            super().populate(ctx)
        except ModelParseError as err:
            hints = [
                hint for op, hint in BUILD_LIMITS.items() if any(op in p for p in err.problems)
            ]
            if not hints:
                raise
            first = str(err).split("\n", 1)[0]
            raise ModelParseError(first, [*err.problems, *hints]) from err

    def reference_runner(self, source: Path, options: ImportOptions) -> Runner | None:
        """OpenCV's Caffe runtime (``cv2.dnn.readNetFromCaffe``) on the same files."""
        from trtimport.importers.caffe.reference import OpenCVCaffeRunner

        prototxt, caffemodel, _ = model_files(source, options)
        return OpenCVCaffeRunner(prototxt, caffemodel)


@hookimpl
def trtimport_register_importers(register: Callable[[Importer], None]) -> None:
    """Register the Caffe importer."""
    register(CaffeImporter())


@hookimpl
def trtimport_register_caffe_layers(register: Callable[..., None]) -> None:
    """Register the built-in layer converters (one module per layer family)."""
    from trtimport.importers.caffe.layers import builtin_converters

    for layer_type, converter in builtin_converters().items():
        register(layer_type, converter)


@hookimpl
def trtimport_register_commands(register: Callable[[str, str], None]) -> None:
    """``trtimport caffe …``: the Caffe tools (``make-weights``)."""
    register("caffe", "trtimport.cli.caffe")
