"""The built-in TensorFlow importers: SavedModel and frozen graphs, Keras, TFLite.

Each converts the model to ONNX with tf2onnx's Python API and hands it to TensorRT's ONNX
parser. Importing this package is cheap: TensorFlow and tf2onnx are imported only while a model
is converted (in :mod:`trtimport.importers.tensorflow.convert`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from trtimport.core.importer import ImportContext, Importer
from trtimport.errors import ModelParseError
from trtimport.importers.base import OnnxBasedImporter
from trtimport.importers.tensorflow.detect import (
    is_hdf5,
    is_saved_model_dir,
    is_saved_model_file,
    looks_like_graphdef,
    looks_like_keras_h5,
    looks_like_keras_zip,
    looks_like_tflite,
)
from trtimport.importers.tensorflow.options import TensorFlowOptions
from trtimport.plugins.hookspecs import hookimpl

if TYPE_CHECKING:
    from trtimport.core.options import ImportOptions
    from trtimport.core.runner import Runner
    from trtimport.importers.tensorflow.convert import Converted, Request


class TensorFlowImporter(OnnxBasedImporter):
    """TensorFlow SavedModel folders and frozen GraphDef ``.pb`` files."""

    name = "tensorflow"
    description = "TensorFlow SavedModel folder or frozen GraphDef, converted to ONNX by tf2onnx"
    extensions: ClassVar[tuple[str, ...]] = (".pb",)
    requires = ("tensorflow", "tf2onnx")
    extra = "tf"
    options_class = TensorFlowOptions

    def detect(self, path: Path, head: bytes) -> bool:
        """Claim SavedModel folders and files whose content is a GraphDef."""
        return is_saved_model_dir(path) or looks_like_graphdef(path, head)

    def model_path(self, source: Path) -> Path:
        """The path to load: a SavedModel's folder when its ``saved_model.pb`` was given."""
        return source.parent if is_saved_model_file(source) else source

    def related_files(self, source: Path, options: ImportOptions) -> list[Path]:
        """Every file of the model (the whole SavedModel folder when its .pb was given)."""
        return super().related_files(self.model_path(source), options)

    def convert(self, path: Path, request: Request) -> Converted:
        """Convert the model at ``path`` to an in-memory ONNX model."""
        from trtimport.importers.tensorflow import convert

        if path.is_dir():
            if not is_saved_model_dir(path):
                raise ModelParseError(
                    f"{path}: not a SavedModel folder (it has no saved_model.pb). Pass the "
                    "folder that tf.saved_model.save or model.export wrote."
                )
            return convert.convert_saved_model(path, request)
        return convert.convert_graphdef(path, request)

    def to_onnx(self, ctx: ImportContext, dest: Path) -> Path:
        """Convert with tf2onnx, check every op was converted, and write the ONNX at ``dest``.

        A model of :data:`~trtimport.importers.tensorflow.convert.LARGE_MODEL_BYTES` or more is
        converted in tf2onnx's large-model form: the checks and renames below see the graph
        without its big weights, which go straight to ``<dest name>.data``.
        """
        from trtimport.importers.tensorflow import checks, convert
        from trtimport.importers.tensorflow.names import apply_user_names
        from trtimport.onnxtools.graph import save_model, save_model_with_data

        options = ctx.options
        opset = checks.check_opset(options.opset)
        convert.import_tensorflow()
        import tf2onnx

        nchw = inputs_as_nchw(options)
        path = self.model_path(ctx.source)
        request = convert.Request(
            opset=opset,
            outputs=list(options.outputs),
            inputs_as_nchw=nchw,
            large_model=self.is_large(path),
        )
        with ctx.progress.phase(f"Converting {ctx.source.name} to ONNX with tf2onnx …"):
            converted = self.convert(path, request)
        model = converted.model
        checks.check_supported(model, ctx.source, opset)
        checks.check_nchw_applied(model, nchw, ctx.source)
        checks.rewrite_nearest_resize(model)
        profiled = [name for profile in options.profiles for name in profile]
        apply_user_names(model, [*options.input_shapes, *profiled, *options.outputs])
        if converted.external:
            save_model_with_data(model, converted.external, dest)
            ctx.note(f"a large model: its weights are kept beside the ONNX, in {dest.name}.data")
        else:
            save_model(model, dest)  # with external data if it passes protobuf's 2 GB limit
        ctx.note(f"converted to ONNX opset {opset} with tf2onnx {tf2onnx.__version__}")
        return dest

    def is_large(self, path: Path) -> bool:
        """Whether to convert in tf2onnx's large-model form (the model's files are big)."""
        from trtimport.importers.tensorflow import convert

        return convert.is_large(path)

    def reference_runner(self, source: Path, options: ImportOptions) -> Runner:
        """Run the original model in TensorFlow, fed like the converted model."""
        from trtimport.importers.tensorflow.runner import NchwInputs

        inner = self.make_runner(self.model_path(source))
        nchw = inputs_as_nchw(options)
        return NchwInputs(inner, nchw) if nchw else inner

    def make_runner(self, path: Path) -> Runner:
        """A runner on the model at ``path`` in its own framework."""
        from trtimport.importers.tensorflow import runner

        if path.is_dir():
            return runner.SavedModelRunner(path)
        return runner.GraphDefRunner(path)


class KerasImporter(TensorFlowImporter):
    """Keras models saved whole: ``.keras`` archives and HDF5 ``.h5`` files."""

    name = "keras"
    description = "Keras model (.keras or .h5; functional or Sequential), converted by tf2onnx"
    extensions = (".keras", ".h5", ".hdf5")

    def detect(self, path: Path, head: bytes) -> bool:
        """Claim ``.keras`` zips with a Keras config and HDF5 files with Keras attributes."""
        return looks_like_keras_zip(path, head) or looks_like_keras_h5(path, head)

    def model_path(self, source: Path) -> Path:
        """Keras models are single files."""
        return source

    def convert(self, path: Path, request: Request) -> Converted:
        """Load the model with Keras and convert it as a tf.function."""
        from trtimport.importers.tensorflow import convert

        if path.suffix.lower() in (".h5", ".hdf5") and not is_hdf5(path):
            raise ModelParseError(
                f"{path}: not an HDF5 file (no HDF5 signature); save the model with "
                "model.save('model.keras') or model.save('model.h5')"
            )
        return convert.convert_keras(path, request)

    def make_runner(self, path: Path) -> Runner:
        """Run the original model in Keras."""
        from trtimport.importers.tensorflow import runner

        return runner.KerasRunner(path)


class TFLiteImporter(TensorFlowImporter):
    """TensorFlow Lite flatbuffers (``.tflite``)."""

    name = "tflite"
    description = "TensorFlow Lite flatbuffer, converted to ONNX by tf2onnx"
    extensions = (".tflite",)

    def detect(self, path: Path, head: bytes) -> bool:
        """Claim files with the ``TFL3`` identifier."""
        return looks_like_tflite(path, head)

    def model_path(self, source: Path) -> Path:
        """TFLite models are single files."""
        return source

    def convert(self, path: Path, request: Request) -> Converted:
        """Convert the flatbuffer with tf2onnx's TFLite front end."""
        from trtimport.importers.tensorflow import convert

        return convert.convert_tflite(path, request)

    def is_large(self, path: Path) -> bool:
        """Never: a flatbuffer stops at 2 GB, and is converted in a child process."""
        return False

    def make_runner(self, path: Path) -> Runner:
        """Run the original model in the TFLite interpreter."""
        from trtimport.importers.tensorflow import runner

        return runner.TFLiteRunner(path)


def inputs_as_nchw(options: ImportOptions) -> list[str]:
    """The ``--inputs-as-nchw`` names from the options' :class:`TensorFlowOptions`."""
    return list(options.importer_options_for(TensorFlowOptions).inputs_as_nchw)


@hookimpl
def trtimport_detect_format(path: Path) -> str | None:
    """A SavedModel's own ``saved_model.pb`` means the SavedModel (it would pass for ONNX)."""
    return TensorFlowImporter.name if is_saved_model_file(path) else None


@hookimpl
def trtimport_register_importers(register: Callable[[Importer], None]) -> None:
    """Register the TensorFlow, Keras and TFLite importers."""
    register(TensorFlowImporter())
    register(KerasImporter())
    register(TFLiteImporter())
