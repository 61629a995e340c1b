"""The UFF schema, detection by content, dimension orders, and bad files (no TensorFlow)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from protoc_child import compile_proto

from trtimport.core.files import read_head
from trtimport.errors import ModelParseError, UnsupportedLayerError
from trtimport.importers.uff import UffImporter
from trtimport.importers.uff.context import Request
from trtimport.importers.uff.convert import uff_to_onnx
from trtimport.importers.uff.model import ORDER_DECREMENT, ORDER_INCREMENT, expand_order, load_uff
from trtimport.importers.uff.proto import regen, uff_schema_pb2

from .test_uff_ops import run_onnx
from .uff_files import UffWriter, order_values

REPO = Path(__file__).resolve().parents[3]


def test_committed_stubs_match_the_proto(tmp_path: Path) -> None:
    for generated in compile_proto(regen.PROTO_FILE, tmp_path):
        committed = regen.PROTO_DIR / generated.name
        assert generated.read_bytes() == committed.read_bytes(), (
            f"{committed.name} is stale: run `python -m trtimport.importers.uff.proto.regen`"
        )


def test_schema_reads_real_files_byte_for_byte(shared_uff: Path) -> None:
    """Parsing and re-serializing every shared file gives its bytes back: no field is lost."""
    for path in sorted(shared_uff.rglob("*.uff")):
        meta = uff_schema_pb2.MetaGraph.FromString(path.read_bytes())
        assert meta.graphs[0].nodes, path
        assert meta.SerializeToString(deterministic=False) == path.read_bytes(), path


def test_schema_matches_the_published_wire_layout(shared_uff: Path, tmp_path: Path) -> None:
    """Netron's schema (the published layout) reads a file trtimport's schema wrote the same."""
    folder = tmp_path / "netron"
    compile_proto(shared_uff / "schema" / "uff.proto", folder)
    sys.path.insert(0, str(folder))
    try:
        import uff_pb2 as netron  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(folder))
    writer = UffWriter()
    writer.input("x", [-1, 4, 4, 2])
    writer.const("w", np.arange(8, dtype=np.float32).reshape(1, 1, 2, 4))
    writer.node("c", "Conv", ["x", "w"], strides=[1, 1], inputs_orders=writer.orders("N+C", "+CK"))
    writer.mark_output("c")
    data = writer.serialize()
    theirs = netron.MetaGraph.FromString(data)
    assert theirs.SerializeToString() == data
    conv = next(n for n in theirs.graphs[0].nodes if n.id == "c")
    ref = next(f.value.ref for f in conv.fields if f.key == "inputs_orders")
    orders = next(e.value for e in theirs.referenced_data if e.key == ref)
    assert list(orders.dim_orders_list.val[1].orders[0].value.val) == order_values("+CK")


@pytest.mark.parametrize(
    ("spec", "rank", "perm"),
    [
        ("N+C", 4, [0, 2, 3, 1]),
        ("N+C", 2, [0, 1]),
        ("N+C", 5, [0, 2, 3, 4, 1]),
        ("NC+", 4, [0, 1, 2, 3]),
        ("+CK", 4, [2, 3, 1, 0]),
        ("+KC", 4, [2, 3, 0, 1]),
        ("CK", 2, [1, 0]),
        ("N-C", 4, [0, 3, 2, 1]),
    ],
)
def test_orders_expand_to_permutations(spec: str, rank: int, perm: list[int]) -> None:
    assert expand_order(tuple(order_values(spec)), rank) == perm


def test_order_encoding_is_the_converters() -> None:
    assert order_values("N+C") == [0, 2, ORDER_INCREMENT, 1]
    assert order_values("+CK") == [2, ORDER_INCREMENT, 1, 0]
    assert order_values("N-C") == [0, ORDER_DECREMENT, 2, 1]


def test_uff_detected_by_content_not_by_name(shared_uff: Path, tmp_path: Path) -> None:
    importer = UffImporter()
    for path in sorted(shared_uff.rglob("*")):
        if path.is_file():
            assert importer.detect(path, read_head(path)) == (path.suffix == ".uff"), path
    renamed = tmp_path / "model.bin"
    renamed.write_bytes((shared_uff / "ppo-hil" / "model.uff").read_bytes())
    assert importer.detect(renamed, read_head(renamed))
    for other in [*REPO.joinpath("tests", "data", "caffe").rglob("*.*")]:
        assert not importer.detect(other, read_head(other)), other


def _small_uff(tmp_path: Path) -> Path:
    writer = UffWriter()
    writer.input("x", [-1, 3])
    writer.const("w", np.ones((3, 2), np.float32))
    writer.node("fc", "FullyConnected", ["x", "w"], inputs_orders=writer.orders("NC", "CK"))
    writer.node("out", "Activation", ["fc"], func="relu")
    writer.mark_output("out")
    return writer.write(tmp_path / "small.uff")


@pytest.mark.parametrize("cut", [0.1, 0.5, 0.97])
def test_truncated_file_is_one_clear_error(tmp_path: Path, cut: float) -> None:
    data = _small_uff(tmp_path).read_bytes()
    broken = tmp_path / "broken.uff"
    broken.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(ModelParseError, match=r"broken\.uff: .*(truncated|corrupt)"):
        uff_to_onnx(load_uff(broken), tmp_path / "out.onnx")
    assert not (tmp_path / "out.onnx").exists()


def test_corrupt_file_is_one_clear_error(tmp_path: Path) -> None:
    data = bytearray(_small_uff(tmp_path).read_bytes())
    data[40:48] = b"\xff" * 8
    broken = tmp_path / "corrupt.uff"
    broken.write_bytes(bytes(data))
    with pytest.raises(ModelParseError, match=r"corrupt\.uff: "):
        load_uff(broken)


def test_cli_error_leaves_no_files(tmp_path: Path) -> None:
    data = _small_uff(tmp_path).read_bytes()
    broken = tmp_path / "cut.uff"
    broken.write_bytes(data[:-7])
    before = sorted(tmp_path.iterdir())
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "trtimport",
            str(broken),
            "-o",
            str(tmp_path / "cut.engine"),
            "--save-onnx",
            str(tmp_path / "cut.onnx"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "cut.uff" in proc.stderr
    assert sorted(tmp_path.iterdir()) == before


def test_every_unsupported_op_is_listed_before_any_work(tmp_path: Path) -> None:
    writer = UffWriter()
    writer.input("image", [1, 8, 8, 3])
    writer.node("anchors", "_GridAnchor_TRT", [], numLayers=1)
    writer.node("boxes", "_NMS_TRT", ["image", "anchors"], topK=10)
    writer.node("strange", "Hypot", ["image"])
    writer.node("weird", "_Lgamma", ["strange"])
    writer.node("pow", "Unary", ["image"], func="pow")
    writer.mark_output("boxes")
    writer.mark_output("weird")
    writer.mark_output("pow")
    path = writer.write(tmp_path / "ssd.uff")
    with pytest.raises(UnsupportedLayerError) as caught:
        uff_to_onnx(load_uff(path), tmp_path / "ssd.onnx")
    message = str(caught.value)
    for line in (
        "anchors (_GridAnchor_TRT)",
        "boxes (_NMS_TRT)",
        "strange (Hypot)",
        "weird (_Lgamma)",
        "NonMaxSuppression",
        "--output",
    ):
        assert line in message
    assert not (tmp_path / "ssd.onnx").exists()
    # The conversion-time check of an op's form runs once the op types pass.
    writer = UffWriter()
    writer.input("image", [1, 8, 8, 3])
    writer.node("pow", "Unary", ["image"], func="pow")
    writer.mark_output("pow")
    with pytest.raises(UnsupportedLayerError, match=r"pow \(Unary\): .*exponent"):
        uff_to_onnx(load_uff(writer.write(tmp_path / "pow.uff")), tmp_path / "pow.onnx")


def test_channel_first_orders(tmp_path: Path) -> None:
    """The same layers written NCHW (orders NC+, bias shaped Cx1x1 as the converter wrote it for
    NCHW) and NHWC (N+C) compute the same numbers."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 5, 6, 3)).astype(np.float32)
    kernel = rng.standard_normal((3, 3, 3, 4)).astype(np.float32)
    bias = rng.standard_normal(4).astype(np.float32)
    stats = [rng.random(4).astype(np.float32) + 0.5 for _ in range(4)]
    results = []
    for spec, shape, feed in (("N+C", x.shape, x), ("NC+", (1, 3, 5, 6), x.transpose(0, 3, 1, 2))):
        writer = UffWriter()
        writer.input("x", list(shape))
        writer.const("k", kernel)
        writer.const("b", bias if spec == "N+C" else bias.reshape(-1, 1, 1))
        for name, value in zip(("gamma", "beta", "mean", "var"), stats, strict=True):
            writer.const(name, value)
        writer.node(
            "conv",
            "Conv",
            ["x", "k"],
            strides=[2, 1],
            implicit_padding="same",
            inputs_orders=writer.orders(spec, "+CK"),
        )
        writer.node("biased", "Binary", ["conv", "b"], func="add")
        writer.node(
            "bn",
            "BatchNorm",
            ["biased", "gamma", "beta", "mean", "var"],
            epsilon=1e-3,
            inputs_orders=writer.orders(spec),
        )
        writer.node(
            "pool",
            "Pool",
            ["bn"],
            func="max",
            kernel=[2, 2],
            strides=[1, 1],
            inputs_orders=writer.orders(spec),
        )
        writer.mark_output("pool")
        done = uff_to_onnx(load_uff(writer.write(tmp_path / f"{spec}.uff")), tmp_path / "m.onnx")
        out = run_onnx(done.path, {"x": feed})["pool"]
        results.append(out if spec == "N+C" else out.transpose(0, 2, 3, 1))
    np.testing.assert_allclose(results[0], results[1], rtol=1e-5, atol=1e-5)


def test_inputs_as_nchw(tmp_path: Path) -> None:
    path = _small_uff(tmp_path)
    writer = UffWriter()
    writer.input("img", [-1, 4, 5, 2])
    writer.node("t", "Transpose", ["img"], permutation=[0, 3, 1, 2])
    writer.mark_output("t")
    path = writer.write(tmp_path / "t.uff")
    done = uff_to_onnx(load_uff(path), tmp_path / "t.onnx", Request(inputs_as_nchw={"img"}))
    x = np.arange(40, dtype=np.float32).reshape(1, 2, 4, 5)
    np.testing.assert_array_equal(run_onnx(done.path, {"img": x})["t"], x)


def test_reduce_without_keepdims_field(tmp_path: Path) -> None:
    """TensorRT 3 era files have no keepdims: axes are dropped (TensorFlow's default) unless the
    result is combined element-wise with another tensor, which only broadcast with them kept."""
    writer = UffWriter()
    writer.input("x", [1, 3, 4, 2])
    writer.node("gap", "Reduce", ["x"], func="mean", axes=[1, 2])
    writer.node("se", "Reduce", ["x"], func="max", axes=[1, 2])
    writer.node("scaled", "Binary", ["x", "se"], func="mul")
    writer.mark_output("gap")
    writer.mark_output("scaled")
    done = uff_to_onnx(load_uff(writer.write(tmp_path / "r.uff")), tmp_path / "r.onnx")
    x = np.random.default_rng(1).standard_normal((1, 3, 4, 2)).astype(np.float32)
    values = run_onnx(done.path, {"x": x})
    np.testing.assert_allclose(values["gap"], x.mean(axis=(1, 2)), rtol=1e-6)
    np.testing.assert_allclose(values["scaled"], x * x.max(axis=(1, 2), keepdims=True), rtol=1e-6)


def test_old_keras_learning_phase_input_is_inference(tmp_path: Path) -> None:
    """Older Keras made the learning phase a plain placeholder; its cond takes the False side."""
    writer = UffWriter()
    writer.input("x", [1, 4])
    writer.input("keras_learning_phase", [], dtype=np.int8)
    writer.const("two", np.float32(2.0))
    writer.node("drop/Switch", "_Switch", ["x", "keras_learning_phase"])
    writer.node("drop/train", "Binary", ["drop/Switch", "two"], func="mul")
    writer.node("drop/infer", "Binary", ["drop/Switch", "two"], func="add")
    writer.node("drop/Merge", "_Merge", ["drop/infer", "drop/train"])
    writer.mark_output("drop/Merge")
    done = uff_to_onnx(load_uff(writer.write(tmp_path / "k.uff")), tmp_path / "k.onnx")
    assert done.inputs == ["x"]
    x = np.arange(4, dtype=np.float32).reshape(1, 4)
    np.testing.assert_array_equal(run_onnx(done.path, {"x": x})["drop/Merge"], x + 2)
