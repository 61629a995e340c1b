"""Small ONNX models with known structure for the runtime tests (built with onnx.helper)."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

#: Node outputs of :func:`make_cnn`, in topological order.
CNN_TENSORS = ["c1", "r1", "p1", "c2", "r2", "f", "logits", "prob"]


def cnn_weights(seed: int = 1) -> dict[str, np.ndarray]:
    """The float weights of :func:`make_cnn` (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    return {
        "conv1.w": rng.standard_normal((4, 1, 3, 3)).astype(np.float32),
        "conv1.b": rng.standard_normal(4).astype(np.float32),
        "conv2.w": (rng.standard_normal((6, 4, 3, 3)) * 0.5).astype(np.float32),
        "conv2.b": rng.standard_normal(6).astype(np.float32),
        "fc.w": (rng.standard_normal((6 * 14 * 14, 10)) * 0.05).astype(np.float32),
    }


def make_cnn(
    path: Path,
    weights: dict[str, np.ndarray] | None = None,
    *,
    batch: int | str = 1,
    external_data: bool = False,
) -> Path:
    """A 1x1x28x28 -> 1x10 softmax classifier: conv, relu, pool, conv, relu, flatten, matmul."""
    w = weights or cnn_weights()
    inits = [numpy_helper.from_array(a, n) for n, a in w.items()]
    inits.append(numpy_helper.from_array(np.array([0, -1], np.int64), "flat.shape"))
    nodes = [
        helper.make_node("Conv", ["x", "conv1.w", "conv1.b"], ["c1"], name="conv1", pads=[1] * 4),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node(
            "MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]
        ),
        helper.make_node("Conv", ["p1", "conv2.w", "conv2.b"], ["c2"], name="conv2", pads=[1] * 4),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("Reshape", ["r2", "flat.shape"], ["f"], name="flatten"),
        helper.make_node("MatMul", ["f", "fc.w"], ["logits"], name="fc"),
        helper.make_node("Softmax", ["logits"], ["prob"], name="softmax", axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 1, 28, 28])],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, [batch, 10])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    if external_data:
        onnx.save(
            model,
            str(path),
            save_as_external_data=True,
            location=path.name + ".data",
            size_threshold=1024,
        )
    else:
        onnx.save(model, str(path))
    return path


def make_identity(path: Path, shape: list[int]) -> Path:
    """y = x for a float input of ``shape`` (to see exactly what preprocessing produced)."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"], name="identity")],
        "identity",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def ort_outputs(path: Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The model's outputs straight from an onnxruntime session (the reference numbers)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds), strict=True))


@functools.cache
def built_engine() -> Path:
    """The CNN built into a (portable, TensorRT-RTX) engine with its sidecar, once per session.

    Building works without a GPU; tests that change the files copy them first.
    """
    from trtimport.core.options import BuildOptions
    from trtimport.pipeline import convert

    folder = Path(tempfile.mkdtemp(prefix="trtimport-test-engine-"))
    atexit.register(shutil.rmtree, folder, True)
    model = make_cnn(folder / "cnn.onnx")
    convert(model, folder / "cnn.engine", build_options=BuildOptions(progress=False))
    return folder / "cnn.engine"


def copy_engine(dest: Path) -> Path:
    """Copy the built engine, its sidecar and its source model into ``dest``; returns the engine.

    The sidecar is rewritten to name the copied source model.
    """
    import json

    engine = built_engine()
    for name in ("cnn.onnx", "cnn.engine", "cnn.engine.json"):
        shutil.copyfile(engine.parent / name, dest / name)
    side = dest / "cnn.engine.json"
    data = json.loads(side.read_text())
    data["source"]["model"] = str(dest / "cnn.onnx")
    side.write_text(json.dumps(data))
    return dest / "cnn.engine"


def copy_refittable_engine(dest: Path) -> Path:
    """:func:`copy_engine`, with the sidecar saying the engine was built ``--refittable``.

    A ``--refittable`` build fails without a GPU, so the CPU tests of the refit mapping use a
    normal build whose sidecar is marked refittable.
    """
    import json

    engine = copy_engine(dest)
    side = Path(str(engine) + ".json")
    data = json.loads(side.read_text())
    data["build_options"]["refittable"] = True
    side.write_text(json.dumps(data))
    return engine
