"""The UFF path on big models: weights read where they lie in the file, never copied whole."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from peak_memory import python_peak

from trtimport.errors import ModelParseError
from trtimport.importers.uff.convert import uff_to_onnx
from trtimport.importers.uff.model import DTYPES, Orders, load_uff
from trtimport.importers.uff.ops.tensor import const_array
from trtimport.importers.uff.proto import uff_schema_pb2
from trtimport.importers.uff.wire import read_data
from trtimport.onnxtools.external_data import external_data_references
from trtimport.onnxtools.mapped import file_region
from trtimport.pipeline import convert
from trtimport.populate import import_model

from .test_uff_ops import run_onnx
from .uff_files import UffWriter

WIDE_IN, WIDE_OUT = 4096, 2048


@pytest.fixture(scope="module")
def wide(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A UFF with 32 MiB of FullyConnected weights stored CK (as ``tf.matmul`` keeps them),
    a conv whose HWIO kernel must be rearranged, and a KC FullyConnected (``transpose_b``)."""
    rng = np.random.default_rng(0)
    writer = UffWriter()
    writer.input("x", [1, 8, 8, 16])
    writer.const("k", rng.standard_normal((3, 3, 16, 64)).astype(np.float32))
    writer.node(
        "conv",
        "Conv",
        ["x", "k"],
        strides=[1, 1],
        implicit_padding="same",
        inputs_orders=writer.orders("N+C", "+CK"),
    )
    writer.const("flat_shape", np.array([1, -1], np.int32))
    writer.node("flat", "Reshape", ["conv", "flat_shape"])
    writer.const("w", (rng.standard_normal((WIDE_IN, WIDE_OUT)) / 64).astype(np.float32))
    writer.node("fc", "FullyConnected", ["flat", "w"], inputs_orders=writer.orders("NC", "CK"))
    writer.const("b", rng.standard_normal(WIDE_OUT).astype(np.float32))
    writer.node("fc_b", "Binary", ["fc", "b"], func="add")
    writer.node("relu", "Activation", ["fc_b"], func="relu")
    writer.const("w2", (rng.standard_normal((10, WIDE_OUT)) / 32).astype(np.float32))
    writer.node("out", "FullyConnected", ["relu", "w2"], inputs_orders=writer.orders("NC", "KC"))
    writer.mark_output("out")
    return writer.write(tmp_path_factory.mktemp("wide") / "wide.uff")


def _numpy_reference(path: Path, x: np.ndarray) -> np.ndarray:
    """The net above in numpy, from the weights the protobuf stubs decode (not trtimport's)."""
    meta = uff_schema_pb2.MetaGraph.FromString(path.read_bytes())
    table = {e.key: np.frombuffer(e.value.blob, np.float32) for e in meta.referenced_data}
    k = table["weights_k"].reshape(3, 3, 16, 64)
    padded = np.pad(x, [(0, 0), (1, 1), (1, 1), (0, 0)])
    conv = np.zeros((1, 8, 8, 64), np.float64)
    for i in range(3):
        for j in range(3):
            conv += np.einsum("nhwc,ck->nhwk", padded[:, i : i + 8, j : j + 8, :], k[i, j])
    fc = conv.reshape(1, -1) @ table["weights_w"].reshape(WIDE_IN, WIDE_OUT)
    relu = np.maximum(fc + table["weights_b"], 0)
    return relu @ table["weights_w2"].reshape(10, WIDE_OUT).T


def test_weights_are_views_of_the_file(wide: Path) -> None:
    model = load_uff(wide)
    weights = const_array(model.nodes["w"])
    region = file_region(weights)
    assert region is not None and region[0] == wide
    data = wide.read_bytes()
    assert data[region[1] : region[1] + weights.nbytes] == weights.tobytes()
    assert not weights.flags.writeable


def test_the_parser_reads_the_weights_from_the_uff(wide: Path) -> None:
    """CK weights and biases are external data in the .uff (through a link beside the ONNX
    file); the conv kernel (HWIO, rearranged) and the KC weights (transposed) are inline."""
    pytest.importorskip("tensorrt_rtx")
    with import_model(wide, backend="tensorrt_rtx") as imported:
        assert imported.onnx_path is not None
        references = external_data_references(imported.onnx_path) or []
        assert {n for n, _ in references} == {"fc/weights", "b"}
        (location,) = {location for _, location in references}
        link = imported.onnx_path.parent / location
        assert link.is_symlink() and link.resolve() == wide.resolve()
        inline = 3 * 3 * 16 * 64 * 4 + 10 * WIDE_OUT * 4
        assert imported.onnx_path.stat().st_size < inline + 8192  # no copy of the 32 MiB
        assert [o.name for o in imported.outputs] == ["out"]


def test_saved_onnx_is_the_standalone_conversion(tmp_path: Path, wide: Path) -> None:
    pytest.importorskip("tensorrt_rtx")
    reference = tmp_path / "reference.onnx"
    uff_to_onnx(load_uff(wide), reference)
    saved = tmp_path / "saved.onnx"
    result = convert(wide, save_onnx_to=saved, build=False, backend="tensorrt_rtx")
    assert result.files_written == [saved]
    assert saved.read_bytes() == reference.read_bytes()
    assert external_data_references(saved) == []
    x = np.random.default_rng(1).standard_normal((1, 8, 8, 16)).astype(np.float32)
    actual = run_onnx(saved, {"x": x})["out"]
    expected = _numpy_reference(wide, x)
    assert np.abs(actual - expected).max() <= 1e-4 * np.abs(expected).max()


def test_conversion_holds_no_copy_of_the_weights(tmp_path: Path, wide: Path) -> None:
    pytest.importorskip("tensorrt_rtx")

    def run() -> None:
        convert(wide, save_onnx_to=tmp_path / "saved.onnx", build=False, backend="tensorrt_rtx")

    peak = python_peak(run)
    print(f"peak {peak} bytes of Python allocations for {wide.stat().st_size} bytes of UFF")
    assert peak < wide.stat().st_size / 8, f"peak {peak} bytes of Python allocations"


def _stub_value(data: Any, table: dict[str, Any]) -> Any:
    """A ``Data`` value decoded by the protobuf stubs, in plain Python."""
    kind = data.WhichOneof("type")
    if kind == "ref":
        return _stub_value(table[data.ref], table)
    if kind in ("s_list", "d_list", "b_list", "i_list", "dtype_list"):
        return list(getattr(data, kind).val)
    if kind == "dim_orders":
        return {e.key: list(e.value.val) for e in data.dim_orders.orders}
    if kind == "dim_orders_list":
        return [{e.key: list(e.value.val) for e in o.orders} for o in data.dim_orders_list.val]
    return getattr(data, kind) if kind else None


def _plain(value: Any) -> Any:
    """A value load_uff gives, in the stubs' plain Python."""
    if isinstance(value, memoryview):
        return bytes(value)
    if isinstance(value, Orders):
        return {k: list(v) for k, v in value.by_rank.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, np.dtype):
        return next(code for code, dtype in DTYPES.items() if dtype == value)
    return value


def test_wire_reader_reads_what_the_stubs_read(shared_uff: Path) -> None:
    """Every node, input and field of every shared file, against the generated stubs."""
    for path in sorted(shared_uff.rglob("*.uff")):
        meta = uff_schema_pb2.MetaGraph.FromString(path.read_bytes())
        table = {e.key: e.value for e in meta.referenced_data}
        model = load_uff(path)
        assert model.graph == meta.graphs[0].id
        assert model.descriptors == [d.id for d in meta.descriptors]
        assert list(model.nodes) == [n.id for n in meta.graphs[0].nodes], path
        for message in meta.graphs[0].nodes:
            node = model.nodes[message.id]
            assert (node.op, node.inputs) == (message.operation, list(message.inputs))
            expected = {f.key: _stub_value(f.value, table) for f in message.fields}
            assert {k: _plain(v) for k, v in node.fields.items()} == expected, node.name


def test_an_inline_blob_is_read_in_place(tmp_path: Path) -> None:
    """A Const whose blob sits in the node itself (no reference) is a view of the file too."""
    weights = np.arange(600, dtype=np.float32).reshape(20, 30) / 600
    writer = UffWriter()
    writer.input("x", [1, 20])
    writer.node("w", "Const", dtype=np.dtype(np.float32), shape=[20, 30], values=weights.tobytes())
    orders = writer.orders("NC", "CK")
    writer.node("fc", "FullyConnected", ["x", "w"], inputs_orders=orders)
    writer.mark_output("fc")
    path = writer.write(tmp_path / "inline.uff")
    model = load_uff(path)
    array = const_array(model.nodes["w"])
    assert np.array_equal(array, weights) and file_region(array) is not None
    x = np.random.default_rng(2).standard_normal((1, 20)).astype(np.float32)
    uff_to_onnx(model, tmp_path / "inline.onnx")
    out = run_onnx(tmp_path / "inline.onnx", {"x": x})["fc"]
    np.testing.assert_allclose(out, x @ weights, rtol=1e-5)


def test_data_keeps_its_last_value_as_a_oneof_does() -> None:
    """A ``Data`` message written with two values holds the last (protobuf's oneof rule)."""
    blob = uff_schema_pb2.Data(blob=b"0123456789").SerializeToString()
    number = uff_schema_pb2.Data(i=7).SerializeToString()
    text = uff_schema_pb2.Data(s="first").SerializeToString()
    view = read_data(memoryview(text + blob), 0, len(text + blob))
    assert isinstance(view, memoryview) and bytes(view) == b"0123456789"
    decoded = read_data(memoryview(blob + number), 0, len(blob + number))
    assert decoded.WhichOneof("type") == "i" and decoded.i == 7


def test_an_empty_file_is_one_clear_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.uff"
    empty.write_bytes(b"")
    with pytest.raises(ModelParseError, match=r"empty\.uff: the UFF file is empty"):
        load_uff(empty)


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (b"\x08\x01\x20\x01", r"a graph at byte 2 has wire type 0, not 2"),
        (b"\x22\x07\x12\x05\x0a\x03\xff\xfe\xfd", r"a node's name, input or operation at byte"),
    ],
)
def test_a_malformed_message_is_one_clear_error(tmp_path: Path, data: bytes, what: str) -> None:
    """A field of the wrong wire type, or a name that is not UTF-8 text, as protobuf refuses."""
    bad = tmp_path / "bad.uff"
    bad.write_bytes(data)
    with pytest.raises(ModelParseError, match=rf"bad\.uff: not a valid UFF file \({what}"):
        load_uff(bad)
