"""Run an ONNX model on ONNX Runtime's CPU execution provider.

Intermediate tensors are returned by adding them as graph outputs to a copy of the model (a new
session per set of extra outputs, cached). External data stays where it is: the copy is handed
to ONNX Runtime as bytes, with the model's folder as the place to read external initializers.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from trtimport.core.runner import Runner, TensorSpec
from trtimport.errors import (
    InferenceError,
    MissingDependencyError,
    ModelParseError,
    OutputMarkingError,
    UsageError,
)

#: ONNX Runtime session option naming the folder external initializers are read from when the
#: model is given as bytes.
_EXTERNAL_FOLDER_KEY = "session.model_external_initializers_file_folder_path"


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError as err:
        raise MissingDependencyError(
            "Running models on ONNX Runtime", "runtime", module="onnxruntime"
        ) from err
    return onnxruntime


def _value_spec(value: Any) -> TensorSpec:
    """TensorSpec of an ONNX ValueInfoProto (None for symbolic or unknown dims)."""
    import onnx

    tensor_type = value.type.tensor_type
    dims: tuple[int | None, ...] = tuple(
        d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim
    )
    elem = tensor_type.elem_type
    dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem)) if elem else np.dtype("float32")
    return TensorSpec(value.name, dims, dtype)


def _reduced_precision(model: Any) -> bool:
    """Whether the graph computes in fp16 or bf16 (initializers or Casts to them)."""
    import onnx

    low = {onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16}
    if any(t.data_type in low for t in model.graph.initializer):
        return True
    return any(
        a.name == "to" and a.i in low
        for node in model.graph.node
        if node.op_type == "Cast"
        for a in node.attribute
    )


def open_session(path: str, folder: str) -> bool:
    """Open ``path`` in an ONNX Runtime session with every graph optimization (run by
    :meth:`OnnxRuntimeRunner._check_optimizer` in a child process)."""
    ort = _ort()
    options = ort.SessionOptions()
    options.add_session_config_entry(_EXTERNAL_FOLDER_KEY, folder)
    try:
        ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    except Exception as err:  # any refusal is reported by the parent's own session
        raise ModelParseError(f"{path}: {err}") from err
    return True


def _has_external_data(model: Any) -> bool:
    import onnx

    return any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)


class OnnxRuntimeRunner(Runner):
    """An ONNX model on ONNX Runtime (CPU execution provider)."""

    name = "onnxruntime"

    def __init__(
        self,
        model: Path,
        *,
        label: str | None = None,
        owned_dir: Path | None = None,
        threads: int | None = None,
    ) -> None:
        """Open ``model``. ``owned_dir`` is a folder this runner removes on :meth:`close`."""
        import onnx

        ort = _ort()
        self.path = Path(model)
        self.label = label or f"{self.path.name} on onnxruntime {ort.__version__}"
        self._owned_dir = owned_dir
        self._sessions: dict[frozenset[str], Any] = {}
        self._session: Any = None
        try:
            self._model = onnx.load(str(self.path), load_external_data=False)
        except Exception as err:
            self.close()
            raise ModelParseError(f"{self.path}: not a readable ONNX model ({err})") from err
        self._options = ort.SessionOptions()
        if threads:
            self._options.intra_op_num_threads = threads
        if _has_external_data(self._model):
            folder = str(self.path.resolve().parent)
            self._options.add_session_config_entry(_EXTERNAL_FOLDER_KEY, folder)
        if _reduced_precision(self._model):
            self._check_optimizer()
        self._session = self._open(str(self.path))
        initializers = {t.name for t in self._model.graph.initializer}
        self._inputs = [
            _value_spec(v) for v in self._model.graph.input if v.name not in initializers
        ]
        self._outputs = [_value_spec(v) for v in self._model.graph.output]
        self._producers: dict[str, tuple[str, str]] = {}
        for node in self._model.graph.node:
            for out in node.output:
                if out:
                    self._producers.setdefault(out, (node.name, node.op_type))

    def _check_optimizer(self) -> None:
        """Open the model once in a child process first: ONNX Runtime's graph optimizer has
        crashed the process on fp16 graphs that pass ``onnx.checker``. Where it crashes, the
        model is opened with the optimizer off (and a note says so)."""
        from trtimport.core.isolate import call_isolated

        ort = _ort()
        try:
            call_isolated(
                "trtimport.runtime.onnxruntime:open_session",
                {"path": str(self.path), "folder": str(self.path.resolve().parent)},
                self.path,
                f"ONNX Runtime {ort.__version__}'s graph optimizer",
            )
        except ModelParseError as err:
            if "crashed" not in str(err):
                return  # the session in this process reports the problem itself
            self._options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            self.add_note(f"{err}; running it with ONNX Runtime's graph optimizations off")

    def _open(self, model: str | bytes) -> Any:
        ort = _ort()
        try:
            return ort.InferenceSession(model, self._options, providers=["CPUExecutionProvider"])
        except Exception as err:
            raise ModelParseError(
                f"{self.path}: ONNX Runtime {ort.__version__} cannot load the model: {err}"
            ) from err

    def inputs(self) -> list[TensorSpec]:
        """The model's inputs (initializers excluded)."""
        return list(self._inputs)

    def outputs(self) -> list[TensorSpec]:
        """The model's outputs."""
        return list(self._outputs)

    def tensor_names(self) -> list[str]:
        """Every node output of the main graph, in the graph's (topological) node order."""
        return list(self._producers)

    def producer(self, tensor: str) -> tuple[str, str] | None:
        """(node name, op type) of the node that computes ``tensor``, if any."""
        return self._producers.get(tensor)

    def select_outputs(self, names: list[str]) -> None:
        """Return the tensors ``names`` (node outputs) by default instead of the model's outputs.

        This is ``--output NAME`` for ONNX Runtime; shapes and dtypes come from ONNX shape
        inference where it knows them.
        """
        unknown = [n for n in names if n not in self._producers]
        if unknown:
            raise OutputMarkingError(
                f"{self.path}: no tensor named {', '.join(map(repr, unknown))} (--output)"
            )
        import onnx

        known = {v.name: v for v in self._model.graph.output}
        if any(n not in known for n in names):
            inferred = onnx.shape_inference.infer_shapes(self._model)
            for value in inferred.graph.value_info:
                known.setdefault(value.name, value)
        self._outputs = [
            _value_spec(known[n]) if n in known else TensorSpec(n, (), np.dtype("float32"))
            for n in names
        ]

    def _session_for(self, extra: frozenset[str]) -> Any:
        """A session whose outputs also include the intermediate tensors in ``extra``."""
        if not extra:
            return self._session
        session = self._sessions.get(extra)
        if session is None:
            unknown = sorted(n for n in extra if n not in self._producers)
            if unknown:
                raise OutputMarkingError(
                    f"{self.path}: no tensor named {', '.join(map(repr, unknown))}; the model's "
                    f"outputs are {', '.join(o.name for o in self._outputs)}"
                )
            import onnx

            copy = onnx.ModelProto()
            copy.CopyFrom(self._model)
            for name in sorted(extra):
                copy.graph.output.append(onnx.ValueInfoProto(name=name))
            session = self._open(copy.SerializeToString())
            self._sessions[extra] = session
        return session

    def infer(
        self, feeds: dict[str, np.ndarray], outputs: list[str] | None = None
    ) -> dict[str, np.ndarray]:
        """Run once; ``outputs`` may name any node output of the model."""
        wanted = list(outputs) if outputs is not None else [o.name for o in self._outputs]
        declared = {v.name for v in self._model.graph.output}
        session = self._session_for(frozenset(n for n in wanted if n not in declared))
        expected = {s.name: s for s in self._inputs}
        missing = [n for n in expected if n not in feeds]
        unknown = [n for n in feeds if n not in expected]
        if missing or unknown:
            raise UsageError(
                f"{self.path}: inputs given: {', '.join(feeds) or 'none'}; the model takes "
                f"{', '.join(expected) or 'none'}"
            )
        arrays = {n: np.ascontiguousarray(a, dtype=expected[n].dtype) for n, a in feeds.items()}
        try:
            values = session.run(wanted, arrays)
        except Exception as err:
            shapes = ", ".join(f"{n} {list(a.shape)}" for n, a in arrays.items())
            raise InferenceError(
                f"{self.path}: ONNX Runtime failed to run the model on inputs {shapes}: {err}"
            ) from err
        return dict(zip(wanted, (np.asarray(v) for v in values), strict=True))

    def close(self) -> None:
        """Drop the sessions and remove the folder this runner owns."""
        self._sessions = {}
        self._session = None
        if self._owned_dir is not None:
            shutil.rmtree(self._owned_dir, ignore_errors=True)
            self._owned_dir = None
