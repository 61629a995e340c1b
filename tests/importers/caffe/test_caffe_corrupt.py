"""Corrupt Caffe inputs through the CLI: exit code 1, one readable message, nothing written."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from trtimport.importers.caffe.make_weights import make_caffe_weights
from trtimport.importers.caffe.proto import caffe_pb2

NET = """name: "small"
input: "data"
input_shape { dim: 1 dim: 2 dim: 6 dim: 6 }
layer {
  name: "conv"
  type: "Convolution"
  bottom: "data"
  top: "conv"
  convolution_param { num_output: 3 kernel_size: 3 }
}
layer {
  name: "relu"
  type: "ReLU"
  bottom: "conv"
  top: "conv"
}
layer {
  name: "fc"
  type: "InnerProduct"
  bottom: "conv"
  top: "fc"
  inner_product_param { num_output: 4 }
}
"""


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """A small deploy prototxt with matching random weights, and an empty output folder."""
    prototxt = tmp_path / "small.prototxt"
    prototxt.write_text(NET)
    weights = make_caffe_weights(prototxt, tmp_path / "small.caffemodel", seed=0).path
    out = tmp_path / "out"
    out.mkdir()
    return {"prototxt": prototxt, "weights": weights, "out": out, "dir": tmp_path}


def _fails(cli, files: dict[str, Path], model: Path, weights: Path | None) -> str:  # type: ignore[no-untyped-def]
    """Run the conversion; check exit code 1, no traceback, no output; return the message."""
    args = [str(model)]
    if weights is not None:
        args += ["--weights", str(weights)]
    out = files["out"]
    result = cli(*args, "-o", str(out / "m.engine"), "--save-onnx", str(out / "m.onnx"))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ")
    assert list(out.iterdir()) == []
    return result.stderr


def test_the_fixture_converts(cli, files: dict[str, Path]) -> None:  # type: ignore[no-untyped-def]
    out = files["out"]
    result = cli(
        str(files["prototxt"]),
        "--weights",
        str(files["weights"]),
        "--no-engine",
        "--save-onnx",
        str(out / "m.onnx"),
    )
    assert result.returncode == 0, result.stderr
    assert (out / "m.onnx").is_file()


def test_truncated_caffemodel(cli, files: dict[str, Path]) -> None:  # type: ignore[no-untyped-def]
    cut = files["dir"] / "cut.caffemodel"
    data = files["weights"].read_bytes()
    cut.write_bytes(data[: len(data) - 100])
    message = _fails(cli, files, files["prototxt"], cut)
    assert f"{cut}: corrupt or truncated caffemodel" in message and "at byte" in message


def test_prototxt_syntax_error(cli, files: dict[str, Path]) -> None:  # type: ignore[no-untyped-def]
    broken = files["dir"] / "broken.prototxt"
    broken.write_text(NET.replace('  type: "ReLU"', '  type "ReLU"'))
    message = _fails(cli, files, broken, files["weights"])
    assert f"{broken}:13:8:" in message and "layer 'relu' starting at line 11" in message


def test_unknown_field_from_an_unknown_fork(cli, files: dict[str, Path]) -> None:  # type: ignore[no-untyped-def]
    forked = files["dir"] / "forked.prototxt"
    forked.write_text(NET.replace('  top: "fc"\n', '  top: "fc"\n  sparse_param { ratio: 2 }\n'))
    message = _fails(cli, files, forked, files["weights"])
    assert f"{forked}:22:3: unknown field 'sparse_param'" in message
    assert "layer 'fc'" in message and "trtimport_register_caffe_layers" in message


def test_missing_weights_for_a_layer(cli, files: dict[str, Path]) -> None:  # type: ignore[no-untyped-def]
    net = caffe_pb2.NetParameter.FromString(files["weights"].read_bytes())
    del net.layer[2].blobs[:]  # fc
    partial = files["dir"] / "partial.caffemodel"
    partial.write_bytes(net.SerializeToString())
    message = _fails(cli, files, files["prototxt"], partial)
    assert "layer 'fc' (InnerProduct" in message and "small.prototxt:17" in message
    assert "has none" in message and "partial.caffemodel" in message


def test_wrong_blob_shape(cli, files: dict[str, Path]) -> None:  # type: ignore[no-untyped-def]
    other = files["dir"] / "other.prototxt"
    other.write_text(NET.replace("num_output: 3", "num_output: 5"))
    wrong = make_caffe_weights(other, files["dir"] / "wrong.caffemodel").path
    message = _fails(cli, files, files["prototxt"], wrong)
    assert "layer 'conv' (Convolution" in message and "small.prototxt:4" in message
    assert "[5, 2, 3, 3]" in message and "expected [3, 2, 3, 3]" in message


def test_cyclic_and_undefined_bottoms(cli, files: dict[str, Path]) -> None:  # type: ignore[no-untyped-def]
    tangled = files["dir"] / "tangled.prototxt"
    tangled.write_text(
        NET.replace('bottom: "data"', 'bottom: "fc"').replace(
            '  bottom: "conv"\n  top: "fc"', '  bottom: "nowhere"\n  top: "fc"'
        )
    )
    message = _fails(cli, files, tangled, files["weights"])
    assert "layer 'conv' (Convolution" in message and "only produced later" in message
    assert "bottom 'nowhere' is not produced" in message and "tangled.prototxt:17" in message


def test_caffemodel_without_a_deploy_prototxt(cli, files: dict[str, Path]) -> None:  # type: ignore[no-untyped-def]
    alone = files["dir"] / "alone"
    alone.mkdir()
    model = alone / "net.caffemodel"
    shutil.copyfile(files["weights"], model)
    message = _fails(cli, files, model, None)
    assert "no deploy prototxt beside it" in message and "--weights" in message
