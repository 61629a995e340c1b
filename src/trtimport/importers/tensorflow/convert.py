"""TensorFlow, Keras and TFLite models -> ONNX through tf2onnx's Python API.

Every function here imports TensorFlow and tf2onnx itself: this module is only imported when a
TensorFlow model is being converted.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtimport.errors import (
    ModelParseError,
    OutputMarkingError,
    UnsupportedLayerError,
    UsageError,
)
from trtimport.importers.tensorflow.checks import DEFAULT_OPSET
from trtimport.importers.tensorflow.names import rename_value, resolve, spellings

if TYPE_CHECKING:
    import onnx

#: Ops whose dangling outputs are not model outputs of a frozen graph.
_NOT_OUTPUT_OPS = frozenset({"Const", "NoOp", "Placeholder", "PlaceholderWithDefault", "Assert"})
#: SavedModel signature tried first, as TensorFlow Serving does.
SERVING_SIGNATURE = "serving_default"
#: Models whose files hold this many bytes or more are converted in tf2onnx's large-model
#: form (:class:`Converted`): frozen and converted whole, one near protobuf's 2 GiB limit
#: would fail, and one of a few hundred MB needs many times the memory and time (a 128 MiB
#: SavedModel: 3.7 GB and 38 s in the ordinary form, 1.7 GB and 14 s in the large-model
#: form, the same graph). ``TRTIMPORT_TF_LARGE_MODEL_BYTES`` sets another limit
#: (:func:`is_large`).
LARGE_MODEL_BYTES = 128 << 20  # 128 MiB
LARGE_MODEL_ENV = "TRTIMPORT_TF_LARGE_MODEL_BYTES"


@dataclass
class Request:
    """What the user asked of the conversion."""

    opset: int = DEFAULT_OPSET
    #: Output names (TensorFlow spelling); a frozen graph is cut at them before conversion.
    outputs: list[str] = field(default_factory=list)
    #: Inputs to transpose from NHWC to NCHW (tf2onnx's ``inputs_as_nchw``).
    inputs_as_nchw: list[str] = field(default_factory=list)
    #: Convert in tf2onnx's large-model form (see :func:`is_large`).
    large_model: bool = False


@dataclass
class Converted:
    """An ONNX model from tf2onnx. In large-model form its big tensors are external: each one
    names a location, and ``external`` holds their bytes by location."""

    model: onnx.ModelProto
    external: dict[str, bytes] = field(default_factory=dict)


def _converted(model: onnx.ModelProto, storage: Any) -> Converted:
    """The model, with the bytes of its external tensors if tf2onnx used its large-model form."""
    if storage is None:
        return Converted(model)
    # The storage keys tf2onnx's nodes, which keep its whole graph alive, weights included.
    storage.node_to_modified_value_attr.clear()
    return Converted(model, storage.name_to_tensor_data)


def model_bytes(path: Path) -> int:
    """The size of a model's files: a SavedModel folder's (its variables, mostly) or a file's."""
    if not path.is_dir():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def is_large(path: Path) -> bool:
    """Whether the model at ``path`` is converted in tf2onnx's large-model form: its files hold
    :data:`LARGE_MODEL_BYTES` or more, or the bytes ``TRTIMPORT_TF_LARGE_MODEL_BYTES`` says."""
    limit = os.environ.get(LARGE_MODEL_ENV, "")
    if limit and not limit.isdigit():
        raise UsageError(f"{LARGE_MODEL_ENV}={limit!r}: give a number of bytes, such as 0")
    return model_bytes(path) >= (int(limit) if limit else LARGE_MODEL_BYTES)


def import_tensorflow() -> Any:
    """Import TensorFlow with its C++ and Python logging turned down to errors."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.get_logger().setLevel(logging.ERROR)
    return tf


class _Collect(logging.Handler):
    """Keeps tf2onnx's error messages so a failure can show them all."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage().splitlines()[0])


@contextlib.contextmanager
def _tf2onnx_errors(source: Path, what: str, large_model: bool = False) -> Iterator[_Collect]:
    """Silence tf2onnx's log, and turn a failure into one ModelParseError with its errors."""
    log = logging.getLogger("tf2onnx")
    collect = _Collect()
    old_level, old_propagate = log.level, log.propagate
    log.setLevel(logging.ERROR)
    log.propagate = False
    log.addHandler(collect)
    try:
        with warnings.catch_warnings():
            # TensorFlow's deprecation notices (tf.lite.Interpreter, v1 graph utilities).
            warnings.simplefilter("ignore")
            yield collect
    except (UsageError, ModelParseError, UnsupportedLayerError, OutputMarkingError):
        raise
    except Exception as err:  # tf2onnx and TensorFlow raise many unrelated types
        hint = (
            f"; it was converted in tf2onnx's large-model form, where a failing optimizer pass "
            f"stops the conversion: {LARGE_MODEL_ENV}=<more bytes than the model> converts it "
            "in the ordinary form, which skips such a pass but needs several times the memory"
            if large_model
            else ""
        )
        raise ModelParseError(
            f"{source}: tf2onnx could not convert this {what}: {type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}{hint}",
            collect.messages,
        ) from err
    finally:
        log.removeHandler(collect)
        log.setLevel(old_level)
        log.propagate = old_propagate


@contextlib.contextmanager
def _tf2onnx_fixes(large_model: bool) -> Iterator[None]:
    """Fixes to tf2onnx 1.17's memory use (and its large-model form), in place only while it
    converts.

    - NumPy 2.0 removed ``np.product``, which tf2onnx calls when it moves a big tensor out of
      the model in its large-model form (``Node.get_value_attr``); it is lent ``np.prod``.
    - After every optimizer pass tf2onnx rewrites each node's NodeProto in place
      (``Node.update_proto``: attributes deleted, then copied in again). With protobuf's upb
      backend a deleted submessage stays in its message's arena until the message itself is
      freed, so each pass left one more copy of every weight (36 passes: 36 copies).
      Here each node gets a fresh NodeProto first, and the old one goes with its arena.
    - In the ordinary form tf2onnx deep-copies the whole graph, weights included, before each
      optimizer pass (to undo a pass that fails). The graph it replaces is held in reference
      cycles, and Python's collector, which counts objects, not the bytes protobuf holds
      outside them, seldom runs: the copies piled up (a 128 MiB SavedModel peaked at 6.4 GB).
      A collection before each copy frees the previous one.
    """
    import gc

    import numpy as np
    import tf2onnx.optimizer
    from tf2onnx.graph import Node

    update_proto = Node.update_proto

    def fresh_update_proto(node: Any, external_tensor_storage: Any = None) -> None:
        old = node._op
        del old.attribute[:]  # update_proto sets them again; the copy below leaves them out
        node._op = type(old)()
        node._op.CopyFrom(old)
        update_proto(node, external_tensor_storage)

    class _CollectThenCopy:
        """``copy`` as tf2onnx's optimizer module sees it: a collection before each deepcopy."""

        @staticmethod
        def deepcopy(value: Any, memo: Any = None) -> Any:
            gc.collect()
            return copy.deepcopy(value, memo)

    lent = large_model and not hasattr(np, "product")
    if lent:
        setattr(np, "product", np.prod)  # noqa: B010 (mypy knows NumPy 2 has no such name)
    Node.update_proto = fresh_update_proto
    tf2onnx.optimizer.copy = _CollectThenCopy  # type: ignore[assignment]
    try:
        yield
    finally:
        tf2onnx.optimizer.copy = copy
        Node.update_proto = update_proto
        if lent:
            delattr(np, "product")
        gc.collect()


def _nchw_candidates(names: list[str]) -> list[str]:
    return [s for name in names for s in spellings(name)]


def saved_model_signature(path: Path) -> str:
    """The signature to convert: ``serving_default`` if present, else the first one.

    Read from ``saved_model.pb`` itself, without loading the model.
    """
    import_tensorflow()
    from google.protobuf import text_format
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    pb, pbtxt = path / "saved_model.pb", path / "saved_model.pbtxt"
    try:
        if pb.is_file():
            saved.ParseFromString(pb.read_bytes())
        else:
            text_format.Parse(pbtxt.read_text(encoding="utf-8"), saved)
    except (DecodeError, text_format.ParseError, UnicodeDecodeError) as err:
        raise ModelParseError(
            f"{path}: saved_model.pb is not a valid SavedModel ({err}); the file may be "
            "truncated or corrupt. Export the model again."
        ) from err
    serving = [m for m in saved.meta_graphs if "serve" in m.meta_info_def.tags]
    graphs = serving or saved.meta_graphs[:1]
    keys = [k for m in graphs for k in m.signature_def if not k.startswith("__")]
    if not keys:
        raise ModelParseError(
            f"{path}: the SavedModel has no serving signature; export it with one "
            "(model.export(path) in Keras, or tf.saved_model.save(..., signatures=...))"
        )
    return SERVING_SIGNATURE if SERVING_SIGNATURE in keys else keys[0]


def convert_saved_model(path: Path, request: Request) -> Converted:
    """Convert a SavedModel folder's serving signature, as ``python -m tf2onnx.convert`` does."""
    import_tensorflow()
    with (
        _tf2onnx_errors(path, "SavedModel", request.large_model),
        _tf2onnx_fixes(request.large_model),
    ):
        import tf2onnx
        from tf2onnx import tf_loader

        signature = saved_model_signature(path)
        graph_def, inputs, outputs, tables, renames = tf_loader.from_saved_model(
            str(path),
            None,
            None,
            signatures=[signature],
            large_model=request.large_model,
            return_initialized_tables=True,
            return_tensors_to_rename=True,
        )
        # tf2onnx's own command line converts SavedModels through this function; the public
        # from_graph_def() would freeze and optimise the already frozen graph a second time.
        model, storage = tf2onnx.convert._convert_common(
            graph_def,
            name=str(path),
            large_model=request.large_model,
            continue_on_error=True,
            opset=request.opset,
            input_names=inputs,
            output_names=outputs,
            inputs_as_nchw=_nchw_candidates(request.inputs_as_nchw),
            tensors_to_rename=renames,
            initialized_tables=tables,
        )
    return _converted(model, storage)


def read_graphdef(path: Path) -> Any:
    """Parse a frozen GraphDef file; a corrupt or truncated file is a ModelParseError."""
    tf = import_tensorflow()
    from google.protobuf.message import DecodeError

    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(path.read_bytes())
    except (DecodeError, RuntimeWarning) as err:
        raise ModelParseError(
            f"{path}: not a valid frozen TensorFlow GraphDef ({err}); the file may be truncated "
            "or corrupt. Freeze and export the graph again."
        ) from err
    if not graph_def.node:
        raise ModelParseError(f"{path}: the GraphDef has no nodes")
    return graph_def


@dataclass
class GraphIO:
    """A frozen graph's inputs (its Placeholders), outputs (what nothing consumes), and every
    tensor name."""

    inputs: list[str]
    outputs: list[str]
    tensors: list[str]


def graph_io(graph_def: Any, path: Path) -> GraphIO:
    """Find a frozen graph's inputs and outputs by importing it into a TensorFlow graph."""
    tf = import_tensorflow()
    graph = tf.Graph()
    try:
        with graph.as_default():
            tf.import_graph_def(graph_def, name="")
    except (ValueError, TypeError, tf.errors.OpError) as err:
        raise ModelParseError(
            f"{path}: TensorFlow cannot load this GraphDef: {str(err).splitlines()[0]}. The file "
            "may be truncated, or need ops from a library that is not installed."
        ) from err
    found = GraphIO([], [], [])
    for op in graph.get_operations():
        found.tensors += [t.name for t in op.outputs]
        if op.type == "Placeholder":
            found.inputs.append(op.outputs[0].name)
        if op.type not in _NOT_OUTPUT_OPS:
            found.outputs += [t.name for t in op.outputs if not t.consumers()]
    return found


def convert_graphdef(path: Path, request: Request) -> Converted:
    """Convert a frozen GraphDef; inputs are its Placeholders, outputs what nothing consumes."""
    graph_def = read_graphdef(path)
    found = graph_io(graph_def, path)
    inputs, outputs = found.inputs, found.outputs
    if request.outputs:
        outputs = [resolve(n, found.tensors) or n for n in request.outputs]
        missing = [n for n in outputs if n not in found.tensors]
        if missing:
            shown = ", ".join(found.tensors[:40]) + (", …" if len(found.tensors) > 40 else "")
            raise OutputMarkingError(
                f"{path}: the graph has no tensor {', '.join(repr(n) for n in missing)} "
                f"(--output). Its tensors include: {shown}"
            )
    if not inputs or not outputs:
        raise ModelParseError(
            f"{path}: found {len(inputs)} Placeholder input(s) and {len(outputs)} output(s); "
            "a frozen graph needs both (name outputs with --output NAME:0)"
        )
    with (
        _tf2onnx_errors(path, "frozen graph", request.large_model),
        _tf2onnx_fixes(request.large_model),
    ):
        import tf2onnx

        model, storage = tf2onnx.convert.from_graph_def(
            graph_def,
            name=path.stem,
            input_names=inputs,
            output_names=outputs,
            opset=request.opset,
            inputs_as_nchw=_nchw_candidates(request.inputs_as_nchw),
            large_model=request.large_model,
        )
    return _converted(model, storage)


def load_keras(path: Path) -> Any:
    """Load a ``.keras`` or ``.h5`` model (safe mode: no Python code from the file runs).

    A ``.keras`` archive's members are checked first (:func:`check_keras_archive`).
    """
    check_keras_archive(path)
    import_tensorflow()
    import keras

    try:
        return keras.models.load_model(str(path), compile=False, safe_mode=True)
    except Exception as err:  # Keras raises ValueError, OSError, TypeError, KeyError, …
        raise ModelParseError(
            f"{path}: Keras cannot load this file as a model: {type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}. A weights-only file needs the "
            "model's code; save the whole model with model.save('model.keras')."
        ) from err


#: The largest ``config.json``/``metadata.json`` of a ``.keras`` archive that is read: a
#: config describes layers, not weights (large real models have a few MiB).
KERAS_CONFIG_LIMIT = 64 << 20


def check_keras_archive(path: Path) -> None:
    """Refuse a ``.keras`` zip whose config or metadata would inflate past
    :data:`KERAS_CONFIG_LIMIT`, or whose members together declare more than this machine's
    memory, before Keras decompresses anything."""
    import zipfile

    from trtimport.core.input_files import max_array_bytes, open_input

    with open_input(path, "Keras model") as f:
        if f.read(4) != b"PK\x03\x04":
            return  # HDF5: read by h5py, chunk by chunk
        f.seek(0)
        try:
            members = zipfile.ZipFile(f).infolist()
        except Exception as err:  # zipfile raises BadZipFile, NotImplementedError, …
            raise ModelParseError(f"{path}: not a readable .keras archive ({err})") from err
    for info in members:
        if info.filename.endswith(".json") and info.file_size > KERAS_CONFIG_LIMIT:
            raise ModelParseError(
                f"{path}: {info.filename} inflates to {info.file_size} bytes; a Keras config "
                f"is at most {KERAS_CONFIG_LIMIT} bytes here. The file is corrupt or hostile."
            )
    total = sum(i.file_size for i in members)
    if total > max_array_bytes():
        raise ModelParseError(
            f"{path}: the archive inflates to {total} bytes, more than trtimport reads into "
            "memory (TRTIMPORT_MAX_ARRAY_BYTES)"
        )


def _layer_name(tensor: Any) -> str:
    history = getattr(tensor, "_keras_history", None)
    operation = getattr(history, "operation", None)
    return str(getattr(operation, "name", "") or tensor.name)


def keras_io_names(model: Any) -> tuple[list[str], list[str]]:
    """Input and output names of a Keras model: the names of its input and output layers."""
    inputs = [_layer_name(t) for t in model.inputs]
    outputs: list[str] = []
    for t in model.outputs:
        name = _layer_name(t)
        while name in outputs:
            name += "_1"
        outputs.append(name)
    return inputs, outputs


def keras_function(model: Any) -> tuple[Any, list[Any]]:
    """The model as a tf.function over its input signature, returning its outputs in order.

    tf2onnx's ``from_keras`` breaks on Keras 3 Sequential models; converting this function
    works for Sequential and functional models alike.
    """
    tf = import_tensorflow()
    input_names, _ = keras_io_names(model)
    signature = [
        tf.TensorSpec(t.shape, t.dtype, name=name)
        for t, name in zip(model.inputs, input_names, strict=True)
    ]

    @tf.function(input_signature=signature)
    def serve(*args: Any) -> list[Any]:
        result = model(list(args) if len(args) > 1 else args[0], training=False)
        return list(result) if isinstance(result, (list, tuple)) else [result]

    return serve, signature


def convert_keras(path: Path, request: Request) -> Converted:
    """Convert a Keras model (``.keras`` or ``.h5``, functional or Sequential)."""
    model = load_keras(path)
    with (
        _tf2onnx_errors(path, "Keras model", request.large_model),
        _tf2onnx_fixes(request.large_model),
    ):
        import tf2onnx

        serve, signature = keras_function(model)
        onnx_model, storage = tf2onnx.convert.from_function(
            serve,
            input_signature=signature,
            opset=request.opset,
            inputs_as_nchw=_nchw_candidates(request.inputs_as_nchw),
            large_model=request.large_model,
        )
    _, output_names = keras_io_names(model)
    for value, name in zip(list(onnx_model.graph.output), output_names, strict=True):
        rename_value(onnx_model, value.name, name)
    return _converted(onnx_model, storage)


def convert_tflite(path: Path, request: Request) -> Converted:
    """Convert a TFLite flatbuffer; its tensor names become the ONNX names.

    tf2onnx loads the file into TensorFlow Lite's interpreter, which crashes the process on
    some corrupt files; the conversion therefore runs in a child process
    (:func:`~trtimport.core.isolate.call_isolated`), where a crash is a clear error.
    """
    import onnx

    from trtimport.core.files import WorkFolder
    from trtimport.core.isolate import call_isolated

    work = WorkFolder("trtimport-tflite-")
    try:
        out = work.path / "model.onnx"
        call_isolated(
            "trtimport.importers.tensorflow.convert:convert_tflite_file",
            {
                "path": str(path),
                "out": str(out),
                "opset": request.opset,
                "inputs_as_nchw": list(request.inputs_as_nchw),
            },
            path,
            "TensorFlow Lite's interpreter",
        )
        return Converted(onnx.load(str(out)))
    finally:
        work.close()


def convert_tflite_file(path: str, out: str, opset: int, inputs_as_nchw: list[str]) -> None:
    """The child process's side of :func:`convert_tflite`: convert and save to ``out``."""
    import onnx

    import_tensorflow()
    with _tf2onnx_errors(Path(path), "TFLite model"):
        import tf2onnx

        from trtimport.importers.tensorflow.tflite_custom import custom_op_handlers

        model, _ = tf2onnx.convert.from_tflite(
            path,
            opset=opset,
            inputs_as_nchw=_nchw_candidates(inputs_as_nchw),
            custom_op_handlers=custom_op_handlers(Path(path)),
        )
    onnx.save(model, out)
