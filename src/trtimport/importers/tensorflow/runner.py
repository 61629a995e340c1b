"""Reference runners: the original model in TensorFlow, Keras or the TFLite interpreter.

Tensor names match the ONNX model trtimport converts the same file to, so ``verify`` can feed
both with the same arrays and compare outputs by name.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from trtimport.core.runner import Runner, TensorSpec
from trtimport.errors import UsageError
from trtimport.importers.tensorflow import convert
from trtimport.importers.tensorflow.names import resolve


def _spec(name: str, shape: Any, dtype: Any) -> TensorSpec:
    dims = tuple(None if d is None or int(d) < 0 else int(d) for d in shape)
    return TensorSpec(name, dims, np.dtype(dtype))


def _select(
    results: dict[str, np.ndarray], wanted: list[str] | None, source: Path
) -> dict[str, np.ndarray]:
    if wanted is None:
        return results
    chosen: dict[str, np.ndarray] = {}
    for name in wanted:
        found = resolve(name, results)
        if found is None:
            raise UsageError(
                f"{source}: the reference runner has no output '{name}'; it has "
                f"{', '.join(results)}"
            )
        chosen[name] = results[found]
    return chosen


def _feed(feeds: dict[str, np.ndarray], name: str, source: Path) -> np.ndarray:
    found = resolve(name, feeds)
    if found is None:
        raise UsageError(f"{source}: no array given for input '{name}' (got {', '.join(feeds)})")
    return feeds[found]


class SavedModelRunner(Runner):
    """A SavedModel's serving signature (the one trtimport converts)."""

    name = "tensorflow"

    def __init__(self, path: Path) -> None:
        tf = convert.import_tensorflow()
        self.path = path
        self._tf = tf
        self._loaded = tf.saved_model.load(str(path))
        self._fn = self._loaded.signatures[convert.saved_model_signature(path)]

    def inputs(self) -> list[TensorSpec]:
        """The signature's inputs, by name."""
        specs = self._fn.structured_input_signature[1]
        return [_spec(k, s.shape, s.dtype.as_numpy_dtype) for k, s in sorted(specs.items())]

    def outputs(self) -> list[TensorSpec]:
        """The signature's outputs, by name."""
        specs = self._fn.structured_outputs
        return [_spec(k, s.shape, s.dtype.as_numpy_dtype) for k, s in sorted(specs.items())]

    def infer(
        self, feeds: dict[str, np.ndarray], outputs: list[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Call the signature once."""
        args = {s.name: self._tf.constant(_feed(feeds, s.name, self.path)) for s in self.inputs()}
        results = {k: v.numpy() for k, v in sorted(self._fn(**args).items())}
        return _select(results, outputs, self.path)

    def close(self) -> None:
        """Drop the loaded model."""
        self._fn = self._loaded = None


class GraphDefRunner(Runner):
    """A frozen GraphDef in a TensorFlow session; any tensor of the graph can be fetched."""

    name = "tensorflow"

    def __init__(self, path: Path) -> None:
        tf = convert.import_tensorflow()
        self.path = path
        graph_def = convert.read_graphdef(path)
        found = convert.graph_io(graph_def, path)
        self._inputs, self._outputs, self._tensors = found.inputs, found.outputs, found.tensors
        self._graph = tf.Graph()
        with self._graph.as_default():
            tf.import_graph_def(graph_def, name="")
        self._session = tf.compat.v1.Session(graph=self._graph)

    def _tensor_spec(self, name: str) -> TensorSpec:
        tensor = self._graph.get_tensor_by_name(name)
        shape = tensor.shape.as_list() if tensor.shape.rank is not None else []
        return _spec(name, shape, tensor.dtype.as_numpy_dtype)

    def inputs(self) -> list[TensorSpec]:
        """The graph's Placeholders."""
        return [self._tensor_spec(n) for n in self._inputs]

    def outputs(self) -> list[TensorSpec]:
        """The tensors nothing in the graph consumes."""
        return [self._tensor_spec(n) for n in self._outputs]

    def infer(
        self, feeds: dict[str, np.ndarray], outputs: list[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Run the session once; ``outputs`` may name any tensor (``name`` or ``name:0``)."""
        names = self._graph_names(outputs) if outputs else {n: n for n in self._outputs}
        feed_dict = {n: _feed(feeds, n, self.path) for n in self._inputs}
        values = self._session.run(list(names.values()), feed_dict=feed_dict)
        return dict(zip(names, values, strict=True))

    def _graph_names(self, wanted: list[str]) -> dict[str, str]:
        names: dict[str, str] = {}
        for name in wanted:
            found = resolve(name, self._tensors)
            if found is None:
                raise UsageError(f"{self.path}: the graph has no tensor '{name}'")
            names[name] = found
        return names

    def close(self) -> None:
        """Close the session."""
        self._session.close()


class KerasRunner(Runner):
    """A Keras model called in inference mode; names are its input and output layers'."""

    name = "keras"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._model = convert.load_keras(path)
        self._input_names, self._output_names = convert.keras_io_names(self._model)

    def inputs(self) -> list[TensorSpec]:
        """The model's input layers."""
        return [
            _spec(n, t.shape, t.dtype)
            for n, t in zip(self._input_names, self._model.inputs, strict=True)
        ]

    def outputs(self) -> list[TensorSpec]:
        """The model's output layers."""
        return [
            _spec(n, t.shape, t.dtype)
            for n, t in zip(self._output_names, self._model.outputs, strict=True)
        ]

    def infer(
        self, feeds: dict[str, np.ndarray], outputs: list[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Call the model once with ``training=False``."""
        arrays = [_feed(feeds, n, self.path) for n in self._input_names]
        result = self._model(arrays if len(arrays) > 1 else arrays[0], training=False)
        results = result if isinstance(result, (list, tuple)) else [result]
        values = {n: np.asarray(r) for n, r in zip(self._output_names, results, strict=True)}
        return _select(values, outputs, self.path)

    def close(self) -> None:
        """Drop the model."""
        self._model = None


class TFLiteRunner(Runner):
    """The TFLite interpreter; names are the flatbuffer's tensor names (as in the ONNX)."""

    name = "tflite"

    def __init__(self, path: Path) -> None:
        tf = convert.import_tensorflow()
        self.path = path
        with warnings.catch_warnings():
            # tf.lite.Interpreter warns that it moves to the ai-edge-litert package.
            warnings.simplefilter("ignore")
            self._interpreter = tf.lite.Interpreter(model_path=str(path))
        self._interpreter.allocate_tensors()

    @staticmethod
    def _specs(details: list[dict[str, Any]]) -> list[TensorSpec]:
        return [_spec(d["name"], d.get("shape_signature", d["shape"]), d["dtype"]) for d in details]

    def inputs(self) -> list[TensorSpec]:
        """The interpreter's inputs."""
        return self._specs(self._interpreter.get_input_details())

    def outputs(self) -> list[TensorSpec]:
        """The interpreter's outputs."""
        return self._specs(self._interpreter.get_output_details())

    def infer(
        self, feeds: dict[str, np.ndarray], outputs: list[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Invoke the interpreter once, resizing inputs to the arrays' shapes."""
        it = self._interpreter
        details = it.get_input_details()
        arrays = [_feed(feeds, d["name"], self.path) for d in details]
        if any(tuple(a.shape) != tuple(d["shape"]) for a, d in zip(arrays, details, strict=True)):
            for array, d in zip(arrays, details, strict=True):
                it.resize_tensor_input(d["index"], list(array.shape))
            it.allocate_tensors()
        for array, d in zip(arrays, it.get_input_details(), strict=True):
            it.set_tensor(d["index"], np.ascontiguousarray(array, dtype=d["dtype"]))
        it.invoke()
        results = {d["name"]: it.get_tensor(d["index"]) for d in it.get_output_details()}
        return _select(results, outputs, self.path)

    def close(self) -> None:
        """Drop the interpreter."""
        self._interpreter = None


class NchwInputs(Runner):
    """Another runner whose named NHWC inputs are fed NCHW (as ``--inputs-as-nchw`` converts)."""

    def __init__(self, inner: Runner, names: list[str]) -> None:
        self.inner = inner
        self.name = inner.name
        self._nchw = {s.name for s in inner.inputs() for n in names if resolve(n, [s.name])}

    def inputs(self) -> list[TensorSpec]:
        """The inner runner's inputs, the transposed ones in NCHW order."""
        return [
            TensorSpec(s.name, (s.shape[0], s.shape[3], s.shape[1], s.shape[2]), s.dtype)
            if s.name in self._nchw and len(s.shape) == 4
            else s
            for s in self.inner.inputs()
        ]

    def outputs(self) -> list[TensorSpec]:
        """The inner runner's outputs."""
        return self.inner.outputs()

    def infer(
        self, feeds: dict[str, np.ndarray], outputs: list[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Transpose the NCHW feeds back to NHWC and run the inner runner."""
        nhwc = {}
        for key, array in feeds.items():
            found = resolve(key, self._nchw)
            nhwc[key] = array.transpose(0, 2, 3, 1) if found and array.ndim == 4 else array
        return self.inner.infer(nhwc, outputs)

    def close(self) -> None:
        """Close the inner runner."""
        self.inner.close()
