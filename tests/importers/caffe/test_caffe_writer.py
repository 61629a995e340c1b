"""The streaming ONNX writer: byte-identical to onnx's own serialization, loads, checks, runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from trtimport.onnxtools import writer
from trtimport.onnxtools.writer import EXTERNAL_ALIGNMENT, write_onnx

rng = np.random.default_rng(0)
WEIGHTS = {
    "w": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
    "b": rng.standard_normal(4).astype(np.float32),
    "unused_flags": np.array([True, False]),
    "fc_w": rng.standard_normal((5, 64)).astype(">f4"),  # big-endian input is converted
    "fc_b": rng.standard_normal(5).astype(np.float16).astype(np.float32),
    "shape": np.array([1, -1], np.int64),
    "strided": rng.standard_normal((3, 7)).astype(np.float32).T,  # written in row blocks
    "scalar": np.array(2.5, np.float32),
}


def _graph() -> onnx.GraphProto:
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Reshape", ["p", "shape"], ["flat"]),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["y"], transB=1, name="fc"),
    ]
    return helper.make_graph(
        nodes,
        "small",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])],
    )


def _reference_model() -> onnx.ModelProto:
    graph = _graph()
    graph.initializer.extend(
        numpy_helper.from_array(a.astype(a.dtype.newbyteorder("=")), n) for n, a in WEIGHTS.items()
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="trtimport"
    )
    model.ir_version = 8
    return model


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def _numpy_reference(x: np.ndarray) -> np.ndarray:
    w, b = WEIGHTS["w"], WEIGHTS["b"]
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(2, 3))
    conv = np.einsum("nchwij,ocij->nohw", windows, w) + b[None, :, None, None]
    relu = np.maximum(conv, 0)
    pooled = relu.reshape(1, 4, 4, 2, 4, 2).max(axis=(3, 5))
    return pooled.reshape(1, -1) @ WEIGHTS["fc_w"].astype(np.float32).T + WEIGHTS["fc_b"]


def test_streamed_file_is_byte_identical_loads_checks_and_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer, "COPY_CHUNK", 8)
    dest = tmp_path / "m.onnx"
    files = write_onnx(dest, _graph(), WEIGHTS, 17, "trtimport")
    assert files.external_data is None and files.bytes_written == dest.stat().st_size
    assert dest.read_bytes() == _reference_model().SerializeToString()
    loaded = onnx.load(str(dest))
    assert loaded.ir_version == 8  # the minimum for opset 17, which TensorRT parsers accept
    assert [t.name for t in loaded.graph.initializer] == list(WEIGHTS)
    onnx.checker.check_model(str(dest), full_check=True)
    x = rng.standard_normal((1, 3, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(_run(dest, x), _numpy_reference(x), rtol=1e-4, atol=1e-4)
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]


def test_large_models_use_external_data_beside_the_file(tmp_path: Path) -> None:
    dest = tmp_path / "out" / "big.onnx"
    files = write_onnx(dest, _graph(), WEIGHTS, 17, "trtimport", max_inline_bytes=100)
    assert files.external_data == dest.with_name("big.onnx.data")
    total = sum(a.nbytes for a in WEIGHTS.values())
    assert dest.stat().st_size < total
    onnx.checker.check_model(str(dest), full_check=True)
    loaded = onnx.load(str(dest))
    for tensor in loaded.graph.initializer:
        np.testing.assert_array_equal(numpy_helper.to_array(tensor), WEIGHTS[tensor.name])
    bare = onnx.load(str(dest), load_external_data=False)
    external = [t for t in bare.graph.initializer if t.external_data]
    assert [t.name for t in external] == ["fc_w"]  # tensors under 1 KiB stay inline
    for tensor in external:
        info = {entry.key: entry.value for entry in tensor.external_data}
        assert info["location"] == "big.onnx.data"
        assert int(info["offset"]) % EXTERNAL_ALIGNMENT == 0
    x = rng.standard_normal((1, 3, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(_run(dest, x), _numpy_reference(x), rtol=1e-4, atol=1e-4)


def test_a_failure_leaves_nothing_behind(tmp_path: Path) -> None:
    dest = tmp_path / "m.onnx"
    bad = {**WEIGHTS, "text": np.array(["not a number"], dtype=object)}
    for limit in (1 << 30, 100):
        with pytest.raises(TypeError, match="'text' has dtype object"):
            write_onnx(dest, _graph(), bad, 17, "trtimport", max_inline_bytes=limit)
        assert list(tmp_path.iterdir()) == []


def _lenet_weights() -> dict[str, np.ndarray]:
    from trtimport.importers.caffe.weights import read_caffemodel

    path = Path(__file__).resolve().parents[3] / "tests/data/caffe/weights/LeNet.caffemodel"
    blobs = read_caffemodel(path).weights
    return {f"{name}/{i}": b for name, arrays in blobs.items() for i, b in enumerate(arrays)}


def _expected_bytes(weights: dict[str, np.ndarray]) -> bytes:
    graph = helper.make_graph([], "w", [], [])
    graph.initializer.extend(numpy_helper.from_array(np.array(a), n) for n, a in weights.items())
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.producer_name = "trtimport"
    model.ir_version = 8
    return model.SerializeToString()


def test_caffemodel_views_are_copied_by_the_kernel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    weights = _lenet_weights()
    calls: list[int] = []
    real_sendfile = os.sendfile

    def counting(out_fd: int, in_fd: int, offset: int, count: int) -> int:
        calls.append(count)
        return real_sendfile(out_fd, in_fd, offset, count)

    monkeypatch.setattr(os, "sendfile", counting)
    dest = tmp_path / "w.onnx"
    write_onnx(dest, helper.make_graph([], "w", [], []), weights, 17, "trtimport")
    assert sum(calls) == sum(a.nbytes for a in weights.values())
    assert dest.read_bytes() == _expected_bytes(weights)


@pytest.mark.parametrize("sent_before_failing", [0, 100])
def test_kernel_copy_failures_fall_back_to_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sent_before_failing: int
) -> None:
    import os

    weights = _lenet_weights()
    real_sendfile = os.sendfile

    def flaky(out_fd: int, in_fd: int, offset: int, count: int) -> int:
        if sent_before_failing and count > sent_before_failing:
            return real_sendfile(out_fd, in_fd, offset, sent_before_failing)
        raise OSError("not supported here")

    monkeypatch.setattr(os, "sendfile", flaky)
    dest = tmp_path / "w.onnx"
    write_onnx(dest, helper.make_graph([], "w", [], []), weights, 17, "trtimport")
    assert dest.read_bytes() == _expected_bytes(weights)
