"""Real TensorFlow models for the tests, saved in every format the importers read.

Each model is built once per test session; its expected outputs come from TensorFlow itself
(Keras for the Keras, SavedModel and frozen-graph files, the TFLite interpreter for .tflite).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

#: Skips a test module where TensorFlow or tf2onnx is not installed (CI installs both).
REQUIRES_TF = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("tensorflow", "tf2onnx")),
    reason="needs `pip install trtimport[tf]`",
)
FORMATS = ("saved_model", "frozen_pb", "keras", "h5", "tflite")
#: Model name -> input (height, width, channels).
INPUT_SHAPES = {
    "functional": (32, 32, 3),
    "sequential": (28, 28, 1),
    "mobilenet_v2": (32, 32, 3),
    "resnet50": (32, 32, 3),
}
#: The frozen graph's Placeholder (converted without ":0" in the tests).
FROZEN_INPUT = "input"


@dataclass
class SavedFiles:
    """One model saved in every format, with a test input and TensorFlow's outputs for it."""

    name: str
    x: np.ndarray
    paths: dict[str, Path] = field(default_factory=dict)
    #: Format -> the input's name as the tests write it (TensorFlow spelling, no ``:0``).
    input_names: dict[str, str] = field(default_factory=dict)
    #: Keras' outputs in the model's output order (for every format but TFLite).
    expected: list[np.ndarray] = field(default_factory=list)
    #: The TFLite interpreter's outputs by tensor name.
    expected_tflite: dict[str, np.ndarray] = field(default_factory=dict)

    def expected_outputs(self, fmt: str, names: list[str]) -> list[np.ndarray]:
        """TensorFlow's outputs for the converted model's outputs ``names``, in that order."""
        if fmt == "tflite":
            return [self.expected_tflite[n] for n in names]
        return self.expected


def _randomize_batch_norm(model: Any, rng: np.random.Generator) -> None:
    """Give BatchNormalization layers non-trivial statistics, so they are really tested."""
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, gamma.shape).astype(np.float32),
                    rng.uniform(-0.2, 0.2, beta.shape).astype(np.float32),
                    rng.uniform(-0.2, 0.2, mean.shape).astype(np.float32),
                    rng.uniform(0.5, 1.5, var.shape).astype(np.float32),
                ]
            )


def build_functional() -> Any:
    """Conv, BN, ReLU/ReLU6, depthwise conv, residual add, pooling, concat, resize,
    transpose, dense, softmax; two outputs."""
    import keras
    from keras import layers

    image = keras.Input(INPUT_SHAPES["functional"], name="image")
    x = layers.Conv2D(8, 3, padding="same", name="conv")(image)
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.ReLU(name="relu")(x)
    y = layers.DepthwiseConv2D(3, padding="same", name="dwconv")(x)
    y = layers.BatchNormalization(name="dw_bn")(y)
    y = layers.ReLU(6.0, name="relu6")(y)
    x = layers.Add(name="residual")([x, y])
    pooled = layers.Concatenate(name="concat")(
        [layers.MaxPooling2D(2, name="maxpool")(x), layers.AveragePooling2D(2, name="avgpool")(x)]
    )
    up = layers.Resizing(24, 24, interpolation="bilinear", name="resize")(pooled)
    nchw = layers.Permute((3, 1, 2), name="transpose")(up)
    flat = layers.Flatten(name="flatten")(nchw)
    logits = layers.Dense(10, name="dense")(flat)
    probs = layers.Softmax(name="probs")(logits)
    features = layers.GlobalAveragePooling2D(name="features")(pooled)
    return keras.Model(image, [probs, features], name="functional")


def build_sequential() -> Any:
    """The same layer families as a Keras 3 Sequential model."""
    import keras
    from keras import layers

    return keras.Sequential(
        [
            keras.Input(INPUT_SHAPES["sequential"], name="digits"),
            layers.Conv2D(6, 3, padding="same"),
            layers.BatchNormalization(),
            layers.ReLU(),
            layers.DepthwiseConv2D(3, padding="same"),
            layers.ReLU(6.0),
            layers.MaxPooling2D(2),
            layers.AveragePooling2D(2),
            layers.Resizing(10, 10, interpolation="nearest"),
            layers.Permute((3, 1, 2)),
            layers.Flatten(),
            layers.Dense(16, activation="relu"),
            layers.Dense(10),
            layers.Softmax(),
        ],
        name="sequential",
    )


def build_application(name: str) -> Any:
    """``keras.applications`` MobileNetV2 or ResNet50 with random weights at a small input."""
    import keras

    builder = {
        "mobilenet_v2": keras.applications.MobileNetV2,
        "resnet50": keras.applications.ResNet50,
    }
    return builder[name](input_shape=INPUT_SHAPES[name], weights=None, classes=10)


def build(name: str) -> Any:
    """Build the named test model with fixed random weights."""
    import keras

    keras.utils.set_random_seed(7)
    if name == "functional":
        model = build_functional()
    elif name == "sequential":
        model = build_sequential()
    else:
        model = build_application(name)
    _randomize_batch_norm(model, np.random.default_rng(7))
    return model


def serving_function(model: Any) -> tuple[Any, Any]:
    """A tf.Module that tracks the model's variables, and its traced serving function.

    The input is named ``input`` with batch None; outputs are ``output_0``, ``output_1``, ….
    """
    import tensorflow as tf

    spec = tf.TensorSpec([None, *model.inputs[0].shape[1:]], tf.float32, name=FROZEN_INPUT)

    def serve(x: Any) -> dict[str, Any]:
        result = model(x, training=False)
        results = result if isinstance(result, (list, tuple)) else [result]
        return {f"output_{i}": r for i, r in enumerate(results)}

    module = tf.Module()
    module.weights = [v.value for v in model.variables]
    module.serve = tf.function(serve, input_signature=[spec])
    return module, module.serve.get_concrete_function()


def save_frozen_graph(concrete: Any, path: Path) -> list[str]:
    """Freeze a concrete function (variables -> constants) into a GraphDef; returns outputs."""
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    frozen = convert_variables_to_constants_v2(concrete)
    path.write_bytes(frozen.graph.as_graph_def().SerializeToString())
    return [t.name.split(":")[0] for t in frozen.outputs]


def save_tflite_from_frozen(
    frozen: Path, outputs: list[str], shape: tuple[int, ...], dest: Path
) -> None:
    """TFLite (float32) from a frozen graph: much faster than going through a SavedModel."""
    import tensorflow as tf

    converter = tf.compat.v1.lite.TFLiteConverter.from_frozen_graph(
        str(frozen), [FROZEN_INPUT], outputs, {FROZEN_INPUT: [1, *shape]}
    )
    dest.write_bytes(converter.convert())


def run_tflite(path: Path, x: np.ndarray) -> dict[str, np.ndarray]:
    """The TFLite interpreter's outputs by tensor name."""
    import warnings

    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    return {d["name"]: interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()}


def save_all(name: str, folder: Path) -> SavedFiles:
    """Build ``name`` and save it as SavedModel, frozen .pb, .keras, .h5 and .tflite.

    The functional model goes through Keras' own exporters (``model.export``, the TFLite
    converter's ``from_keras_model``); the others through ``tf.saved_model.save`` and the
    frozen graph, which is several times faster for the large applications.
    """
    import tensorflow as tf

    model = build(name)
    folder.mkdir(parents=True, exist_ok=True)
    x = np.random.default_rng(11).standard_normal((1, *INPUT_SHAPES[name])).astype(np.float32)
    outputs = model(x, training=False)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    saved = SavedFiles(name, x, expected=[np.asarray(o) for o in outputs])
    paths = saved.paths
    paths.update(
        saved_model=folder / "saved_model",
        frozen_pb=folder / f"{name}.pb",
        keras=folder / f"{name}.keras",
        h5=folder / f"{name}.h5",
        tflite=folder / f"{name}.tflite",
    )
    module, concrete = serving_function(model)
    frozen_outputs = save_frozen_graph(concrete, paths["frozen_pb"])
    model.save(paths["keras"])
    model.save(paths["h5"])
    keras_name = model.inputs[0]._keras_history.operation.name
    saved.input_names = dict.fromkeys(FORMATS, keras_name)
    saved.input_names["frozen_pb"] = FROZEN_INPUT
    if name == "functional":
        model.export(str(paths["saved_model"]), verbose=False)
        saved.input_names["saved_model"] = model.inputs[0].name
        paths["tflite"].write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
        saved.input_names["tflite"] = f"serving_default_{model.inputs[0].name}"
    else:
        tf.saved_model.save(
            module, str(paths["saved_model"]), signatures={"serving_default": concrete}
        )
        saved.input_names["saved_model"] = FROZEN_INPUT
        save_tflite_from_frozen(
            paths["frozen_pb"], frozen_outputs, INPUT_SHAPES[name], paths["tflite"]
        )
        saved.input_names["tflite"] = FROZEN_INPUT
    saved.expected_tflite = run_tflite(paths["tflite"], x)
    return saved


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """max |actual - expected| / max |expected| (0 when both are all zeros)."""
    scale = float(np.max(np.abs(expected)))
    diff = float(np.max(np.abs(actual.astype(np.float64) - expected.astype(np.float64))))
    return diff / scale if scale else diff
