"""--calib-cache with TensorRT's text calibration caches (written here in TensorRT's format)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from trtimport.errors import ModelParseError, UsageError
from trtimport.onnxtools.passes.legacy_cache import match_names, read_legacy_cache

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("trtimport.importers.caffe")

REPO = Path(__file__).resolve().parents[3]
MNIST = REPO / "examples" / "mnist"


def _hex(scale: float) -> str:
    """The 8 hex digits TensorRT writes: the big-endian bits of the float32 scale."""
    return struct.pack(">f", scale).hex()


def _write_cache(path: Path, header: str, scales: dict[str, float]) -> None:
    lines = [header, *(f"{name}: {_hex(s)}" for name, s in scales.items())]
    path.write_text("\n".join(lines) + "\n")


def test_both_calibrator_kinds_parse_to_127_times_the_scale(tmp_path: Path) -> None:
    for header in ("TRT-8601-EntropyCalibration2", "TRT-7103-MinMaxCalibration"):
        path = tmp_path / "cache.txt"
        _write_cache(path, header, {"data": 1 / 127, "conv1/Relu:0": 0.0421})
        cache = read_legacy_cache(path)
        assert cache.calibrator == header.split("-")[2]
        assert cache.version == int(header.split("-")[1])
        assert 127 * cache.scales["data"] == pytest.approx(1.0)
        assert cache.scales["conv1/Relu:0"] == np.float32(0.0421)
    # A real TensorRT 8.6 line (scale 0x3c010a14 = 0.007875...)
    path.write_text("TRT-8601-EntropyCalibration2\ninput_1: 3c010a14\n")
    assert read_legacy_cache(path).scales["input_1"] == pytest.approx(0.0078760, rel=1e-4)


def test_bad_lines_name_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "cache.txt"
    path.write_text("TRT-8601-EntropyCalibration2\ndata: 3c010a14\nconv1 = 0.5\n")
    with pytest.raises(ModelParseError, match=r"cache.txt:3: expected '<tensor>: <8 hex"):
        read_legacy_cache(path)
    path.write_text("TRT-8601-Whatever\n")
    with pytest.raises(ModelParseError, match=r"cache.txt:1: expected a header"):
        read_legacy_cache(path)


def test_names_map_across_tensorflow_suffixes_and_punctuation() -> None:
    found = match_names(
        ["data", "dense_1/Relu", "conv2/BiasAdd:0", "Pool.3"],
        ["data", "dense_1/Relu:0", "conv2/BiasAdd", "pool_3", "missing"],
    )
    assert found == {
        "data": "data",
        "dense_1/Relu:0": "dense_1/Relu",
        "conv2/BiasAdd": "conv2/BiasAdd:0",
        "pool_3": "Pool.3",
    }


def _convert(tmp_path: Path, name: str, **precision: object):  # type: ignore[no-untyped-def]
    from trtimport import convert
    from trtimport.core.options import ImportOptions, PrecisionOptions

    return convert(
        MNIST / "lenet.prototxt",
        import_options=ImportOptions(
            weights=MNIST / "lenet.caffemodel",
            precision=PrecisionOptions(int8=True, **precision),  # type: ignore[arg-type]
        ),
        save_onnx_to=tmp_path / f"{name}.onnx",
        build=False,
    )


def _qdq(path: Path) -> dict[str, np.ndarray]:
    model = onnx.load(str(path))
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def test_caffe_blob_names_give_the_same_qdq_as_our_calibration(tmp_path: Path) -> None:
    with np.load(MNIST / "digits.npz", allow_pickle=False) as data:
        images = data["images"][:50].astype(np.float32)[:, None] / 256
    calib = tmp_path / "calib.npz"
    np.savez(calib, data=images)
    ours = tmp_path / "ours.json"
    _convert(tmp_path, "ours", calib_data=calib, calib_cache=ours)
    ranges = json.loads(ours.read_text())["ranges"]
    # ip1 reads pool2 through the Flatten the converter adds; TensorRT names the blob pool2.
    assert set(ranges) == {"data", "pool1", "ip1/Flatten", "ip1"}
    blobs = {"ip1/Flatten": "pool2"}
    legacy = tmp_path / "lenet.calib.cache"
    _write_cache(
        legacy,
        "TRT-8601-EntropyCalibration2",
        {blobs.get(k, k): v / 127 for k, v in ranges.items()} | {"conv1": 0.3, "prob": 0.01},
    )
    result = _convert(tmp_path, "legacy", calib_cache=legacy)
    assert any(
        "4 of 4 activation(s) from the TensorRT EntropyCalibration2" in n for n in result.notes
    )
    a, b = _qdq(tmp_path / "ours.onnx"), _qdq(tmp_path / "legacy.onnx")
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert legacy.read_text().startswith("TRT-8601")  # read only: never replaced by our JSON

    # Entries missing: those layers stay float, or are calibrated with --calib-data.
    _write_cache(legacy, "TRT-8601-MinMaxCalibration", {"data": 1 / 127, "pool1": 0.05})
    partial = _convert(tmp_path, "partial", calib_cache=legacy)
    missing = [n for n in partial.notes if "no cache entry for" in n]
    assert missing and "ip1/Flatten, ip1:" in missing[0] and "stay in float" in missing[0]
    ops = [n.op_type for n in onnx.load(str(tmp_path / "partial.onnx")).graph.node]
    assert ops.count("QuantizeLinear") == 2
    filled = _convert(tmp_path, "filled", calib_cache=legacy, calib_data=calib)
    assert any("calibrated them" in n for n in filled.notes)
    ops = [n.op_type for n in onnx.load(str(tmp_path / "filled.onnx")).graph.node]
    assert ops.count("QuantizeLinear") == 4

    _write_cache(legacy, "TRT-8601-EntropyCalibration2", {"other": 0.1})
    with pytest.raises(UsageError, match="none of the tensors the INT8 layers read has an entry"):
        _convert(tmp_path, "none", calib_cache=legacy)
