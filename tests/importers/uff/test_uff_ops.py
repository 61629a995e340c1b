"""Op by op: small TensorFlow graphs written as UFF the way NVIDIA's converter wrote them,
converted by trtimport (engine built with TensorRT), checked against TensorFlow running the graph.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from trtimport import BuildOptions, ImportOptions, convert

from .uff_files import graphdef_to_uff

pytestmark = pytest.mark.tf

TOLERANCE = 1e-4


@dataclass
class Case:
    """A TensorFlow graph, its feeds and the tensors to compare."""

    graph: Any
    feeds: dict[str, np.ndarray]
    outputs: list[str]


def _rng() -> np.random.Generator:
    return np.random.default_rng(7)


def _f32(*shape: int, scale: float = 1.0) -> np.ndarray:
    return (_rng().standard_normal(shape) * scale).astype(np.float32)


def _graph(tf: Any, build: Callable[[Any], dict[str, Any]], feeds: dict[str, np.ndarray]) -> Case:
    """Build a v1 graph: placeholders named after ``feeds`` (batch axis None), then ``build``."""
    graph = tf.Graph()
    with graph.as_default():
        holders = {
            name: tf.compat.v1.placeholder(tf.float32, [None, *a.shape[1:]], name=name)
            for name, a in feeds.items()
        }
        outs = build(holders)
        # TensorFlow node names are unique regardless of case: prefix them off the op names.
        names = [tf.identity(tensor, name=f"y_{name}").op.name for name, tensor in outs.items()]
    return Case(graph, feeds, names)


def _conv_same_relu6(tf: Any) -> Case:
    def build(x: dict[str, Any]) -> dict[str, Any]:
        y = tf.nn.conv2d(x["x"], _f32(3, 3, 3, 4), strides=[1, 2, 2, 1], padding="SAME")
        return {"out": tf.nn.relu6(tf.nn.bias_add(y, _f32(4)) * 3.0)}

    return _graph(tf, build, {"x": _f32(2, 9, 9, 3)})


def _conv_valid_dilated(tf: Any) -> Case:
    def build(x: dict[str, Any]) -> dict[str, Any]:
        y = tf.nn.conv2d(x["x"], _f32(3, 3, 3, 5), strides=1, padding="VALID", dilations=2)
        return {"out": tf.nn.sigmoid(y)}

    return _graph(tf, build, {"x": _f32(1, 11, 10, 3)})


def _depthwise_batch_norm(tf: Any) -> Case:
    def build(x: dict[str, Any]) -> dict[str, Any]:
        y = tf.nn.depthwise_conv2d(x["x"], _f32(3, 3, 4, 2), strides=[1, 2, 2, 1], padding="SAME")
        scale, offset = _f32(8) + 1.5, _f32(8)
        mean, var = _f32(8), np.abs(_f32(8)) + 0.5
        v1 = tf.raw_ops.FusedBatchNorm(
            x=y,
            scale=scale,
            offset=offset,
            mean=mean,
            variance=var,
            epsilon=1e-3,
            is_training=False,
        )[0]
        v3 = tf.raw_ops.FusedBatchNormV3(
            x=y,
            scale=offset,
            offset=scale,
            mean=mean,
            variance=var,
            epsilon=1e-2,
            is_training=False,
        )[0]
        return {"bn": tf.nn.relu6(v1), "bn3": tf.nn.elu(v3)}

    return _graph(tf, build, {"x": _f32(2, 8, 7, 4)})


def _pads(tf: Any) -> Case:
    def build(x: dict[str, Any]) -> dict[str, Any]:
        sym = tf.pad(x["x"], [[0, 0], [1, 1], [2, 2], [0, 0]])
        folded = tf.nn.conv2d(sym, _f32(3, 3, 3, 4), strides=1, padding="VALID")
        asym = tf.pad(x["x"], [[0, 0], [0, 1], [1, 2], [0, 0]])
        explicit = tf.nn.conv2d(asym, _f32(2, 2, 3, 2), strides=2, padding="VALID")
        return {"folded": folded, "explicit": explicit}

    return _graph(tf, build, {"x": _f32(1, 7, 6, 3)})


def _pools(tf: Any) -> Case:
    def build(x: dict[str, Any]) -> dict[str, Any]:
        v = x["x"] - 2.0  # mostly negative: a max over padding zeros would show
        padded = tf.pad(v, [[0, 0], [1, 1], [1, 1], [0, 0]])
        return {
            "max_same": tf.nn.max_pool2d(v, 3, 2, "SAME"),
            "avg_same": tf.nn.avg_pool2d(v, 3, 2, "SAME"),
            "avg_padded": tf.nn.avg_pool2d(padded, 3, 1, "VALID"),
            "max_padded": tf.nn.max_pool2d(padded, 2, 2, "VALID"),
        }

    return _graph(tf, build, {"x": _f32(2, 7, 8, 3)})


def _activations(tf: Any) -> Case:
    def build(x: dict[str, Any]) -> dict[str, Any]:
        v = x["x"]
        return {
            "leaky": tf.nn.leaky_relu(v, alpha=0.1),
            "math": tf.math.rsqrt(tf.square(v) + 0.5) * tf.exp(-tf.abs(v)) - tf.tanh(v) / 3.0,
            "softmax": tf.nn.softmax(v),
        }

    return _graph(tf, build, {"x": _f32(2, 3, 4, 5)})


def _transpose_reduce(tf: Any) -> Case:
    def build(x: dict[str, Any]) -> dict[str, Any]:
        t = tf.transpose(x["x"], [0, 3, 1, 2])
        return {
            "mean_keep": tf.reduce_mean(t, axis=[2, 3], keepdims=True),
            "max_last": tf.reduce_max(t, axis=-1),
            "sum": tf.reduce_sum(x["x"], axis=[1]),
        }

    return _graph(tf, build, {"x": _f32(2, 4, 5, 3)})


def _slices_and_shapes(tf: Any) -> Case:
    def build(x: dict[str, Any]) -> dict[str, Any]:
        v = x["x"]
        batch = tf.shape(v)[0]
        flat = tf.reshape(v, tf.stack([batch, -1]))
        return {
            "flat": flat * 2.0,
            "window": v[:, 1:3, ::2, -1],
            "reversed": v[:, ::-1, 1:, :2],
            "squeezed": tf.squeeze(v[:, :1], axis=[1]),
            "expanded": tf.concat([tf.expand_dims(v[:, 0], 1), v], axis=1),
            "stacked": tf.stack([v[:, :, :, 0], v[:, :, :, 1]], axis=-1),
        }

    return _graph(tf, build, {"x": _f32(2, 4, 6, 3)})


def _dense(tf: Any) -> Case:
    def build(x: dict[str, Any]) -> dict[str, Any]:
        v = x["x"]
        kc = tf.matmul(v, _f32(5, 6), transpose_b=True)
        return {"kc": kc, "ck": tf.matmul(v, _f32(6, 3)) + _f32(3)}

    return _graph(tf, build, {"x": _f32(4, 6)})


def _batch_matmul_band(tf: Any) -> Case:
    def build(x: dict[str, Any]) -> dict[str, Any]:
        a, b = x["a"], x["b"]
        product = tf.linalg.matmul(a, b, adjoint_b=True)
        return {
            "band": tf.linalg.band_part(product, 1, 0),
            "upper": tf.linalg.band_part(tf.linalg.matmul(a, a, adjoint_a=True), 0, -1),
        }

    return _graph(tf, build, {"a": _f32(2, 4, 3), "b": _f32(2, 5, 3)})


def _learning_phase_cond(tf: Any) -> Case:
    def build(x: dict[str, Any]) -> dict[str, Any]:
        training = tf.compat.v1.placeholder_with_default(False, [], name="keras_learning_phase")
        false_side, true_side = tf.raw_ops.Switch(data=x["x"], pred=training)
        merged = tf.raw_ops.Merge(inputs=[false_side + 1.0, true_side * 0.5]).output
        return {"out": tf.nn.relu(merged)}

    return _graph(tf, build, {"x": _f32(2, 6)})


def _conv_transpose_lrn(tf: Any) -> Case:
    def build(x: dict[str, Any]) -> dict[str, Any]:
        v = x["x"]
        same = tf.nn.conv2d_transpose(v, _f32(3, 3, 4, 3), [2, 10, 9, 4], 2, padding="SAME")
        valid = tf.nn.conv2d_transpose(v, _f32(2, 3, 2, 3), [2, 10, 11, 2], 2, padding="VALID")
        lrn = tf.nn.local_response_normalization(v, depth_radius=1, bias=1.5, alpha=0.3, beta=0.7)
        return {"same": same, "valid": valid, "normalized": lrn}

    return _graph(tf, build, {"x": _f32(2, 5, 5, 3)})


def _gather_tile_pads(tf: Any) -> Case:
    def build(x: dict[str, Any]) -> dict[str, Any]:
        v = x["x"]
        picked = tf.gather(v, [2, 0, 2], axis=2)
        low = tf.expand_dims(tf.argmin(v, axis=1)[:, :, 0], 1)
        best = tf.cast(tf.argmax(v, axis=-1) - low, tf.float32)
        edges = tf.pad(v, [[0, 0], [1, 2], [2, 1], [0, 0]], mode="REFLECT")
        ones = tf.pad(v, [[0, 0], [1, 0], [0, 1], [0, 0]], constant_values=1.5)
        return {
            "picked": tf.tile(picked, [1, 2, 1, 1]) - tf.maximum(v[:, :1, :3], 0.2),
            "best": best,
            "edges": tf.minimum(edges, 0.5) * tf.sqrt(tf.abs(edges)),
            "ones": tf.math.log(tf.abs(ones) + 1.0) / tf.negative(ones - 9.0),
            "squared": tf.math.squared_difference(tf.stop_gradient(v), 0.5),
        }

    return _graph(tf, build, {"x": _f32(2, 4, 5, 3)})


def _mobilenet_block(tf: Any) -> Case:
    """MobileNet's pattern as Keras writes it: asymmetric zero padding before a stride-2 VALID
    conv, fused batch norms, ReLU6 (op and clip), depthwise and pointwise convs, a residual add,
    global average pooling kept 4-D, dropout as a learning-phase cond, a 1x1 classifier conv,
    a reshape to the batch's size and softmax."""

    def batch_norm(y: Any, channels: int, v3: bool) -> Any:
        op = tf.raw_ops.FusedBatchNormV3 if v3 else tf.raw_ops.FusedBatchNorm
        return op(
            x=y,
            scale=_f32(channels) + 1.0,
            offset=_f32(channels),
            mean=_f32(channels) * 0.1,
            variance=np.abs(_f32(channels)) + 0.5,
            epsilon=1e-3,
            is_training=False,
        )[0]

    def build(x: dict[str, Any]) -> dict[str, Any]:
        v = tf.pad(x["image"], [[0, 0], [0, 1], [0, 1], [0, 0]])
        v = tf.nn.conv2d(v, _f32(3, 3, 3, 8, scale=0.5), strides=2, padding="VALID")
        first = tf.nn.relu6(batch_norm(v, 8, v3=True))
        v = tf.nn.depthwise_conv2d(first, _f32(3, 3, 8, 1), [1, 1, 1, 1], padding="SAME")
        v = tf.clip_by_value(batch_norm(v, 8, v3=False), 0.0, 6.0)
        v = tf.nn.conv2d(v, _f32(1, 1, 8, 8, scale=0.3), strides=1, padding="SAME")
        v = batch_norm(v, 8, v3=False) + first
        v = tf.reduce_mean(v, axis=[1, 2], keepdims=True)
        training = tf.compat.v1.placeholder_with_default(False, [], name="keras_learning_phase")
        off, on = tf.raw_ops.Switch(data=v, pred=training)
        v = tf.raw_ops.Merge(inputs=[off, on * 0.5]).output
        v = tf.nn.conv2d(v, _f32(1, 1, 8, 10), strides=1, padding="VALID") + _f32(10)
        v = tf.reshape(v, tf.stack([tf.shape(v)[0], 10]))
        return {"probs": tf.nn.softmax(v)}

    return _graph(tf, build, {"image": _f32(2, 16, 16, 3)})


CASES: dict[str, Callable[[Any], Case]] = {
    "conv_same_relu6": _conv_same_relu6,
    "conv_valid_dilated": _conv_valid_dilated,
    "depthwise_batch_norm": _depthwise_batch_norm,
    "pads": _pads,
    "pools": _pools,
    "activations": _activations,
    "transpose_reduce": _transpose_reduce,
    "slices_and_shapes": _slices_and_shapes,
    "dense": _dense,
    "batch_matmul_band": _batch_matmul_band,
    "learning_phase_cond": _learning_phase_cond,
    "conv_transpose_lrn": _conv_transpose_lrn,
    "gather_tile_pads": _gather_tile_pads,
    "mobilenet_block": _mobilenet_block,
}


def run_onnx(path: Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every output of onnxruntime on the ONNX file, by name."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, feeds), strict=True))


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """max |actual - expected| / max |expected| (shapes must agree)."""
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = float(np.abs(expected).max()) or 1.0
    return float(np.abs(actual.astype(np.float64) - expected).max()) / scale


@pytest.mark.parametrize("case", list(CASES))
def test_op_matches_tensorflow(tf: Any, tmp_path: Path, case: str) -> None:
    built = CASES[case](tf)
    with tf.compat.v1.Session(graph=built.graph) as session:
        expected = dict(
            zip(
                built.outputs,
                session.run(
                    [f"{n}:0" for n in built.outputs], {f"{k}:0": v for k, v in built.feeds.items()}
                ),
                strict=True,
            )
        )
    uff = graphdef_to_uff(built.graph.as_graph_def(), built.outputs).write(tmp_path / f"{case}.uff")
    onnx_path = tmp_path / f"{case}.onnx"
    result = convert(
        uff,
        tmp_path / f"{case}.engine",
        import_options=ImportOptions(input_shapes={k: v.shape for k, v in built.feeds.items()}),
        build_options=BuildOptions(progress=False),
        save_onnx_to=onnx_path,
    )
    assert result.format == "uff" and result.engine_bytes > 0
    actual = run_onnx(onnx_path, built.feeds)
    errors = {name: relative_error(actual[name], expected[name]) for name in built.outputs}
    print(f"{case}: " + ", ".join(f"{k} {v:.1e}" for k, v in errors.items()))
    assert max(errors.values()) <= TOLERANCE, errors
