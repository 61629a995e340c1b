"""External data confinement, corrupt files, and parser errors collected into one error."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from onnx import helper
from onnx_models import conv_relu, save, with_external_weights

from trtimport import ModelParseError, convert, import_model
from trtimport.core.options import BuildOptions
from trtimport.onnxtools.external_data import check_external_data

pytest.importorskip("tensorrt_rtx")


def test_external_data_inside_the_folder_builds(tmp_path: Path) -> None:
    model = with_external_weights(tmp_path, "weights/w.bin")
    result = convert(model, tmp_path / "m.engine", build_options=BuildOptions(progress=False))
    assert result.outputs[0].shape == (1, 4, 6, 6)
    hashed = {Path(p).name for p in [str(f) for f in result.files_written]}
    assert "m.engine" in hashed


@pytest.mark.parametrize("location", ["../secret.bin", "sub/../../secret.bin"])
def test_relative_escape_is_refused(tmp_path: Path, location: str) -> None:
    model = with_external_weights(tmp_path / "model", location)
    with pytest.raises(ModelParseError, match="outside the model's folder"):
        check_external_data(model)


def test_absolute_path_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "elsewhere" / "secret.bin"
    model = with_external_weights(tmp_path / "model", str(secret))
    assert secret.is_file()
    with pytest.raises(ModelParseError, match=f"'{secret}' is outside"):
        check_external_data(model)


def test_symlink_escaping_the_folder_is_refused(tmp_path: Path) -> None:
    model = with_external_weights(tmp_path / "model", "w.bin")
    secret = tmp_path / "secret.bin"
    os.replace(tmp_path / "model" / "w.bin", secret)
    (tmp_path / "model" / "w.bin").symlink_to(secret)
    with pytest.raises(ModelParseError, match=r"'w\.bin' is outside"):
        check_external_data(model)


def test_symlinked_model_is_checked_where_the_parser_looks(tmp_path: Path) -> None:
    real = with_external_weights(tmp_path / "real", "w.bin")
    (tmp_path / "links").mkdir()
    link = tmp_path / "links" / "model.onnx"
    link.symlink_to(real)
    with pytest.raises(ModelParseError, match=r"'w\.bin' is missing"):
        check_external_data(link)


def test_missing_external_data(tmp_path: Path) -> None:
    model = with_external_weights(tmp_path, "w.bin", write_data=False)
    with pytest.raises(ModelParseError, match=r"'w\.bin' is missing"):
        import_model(model)


def test_truncated_model_is_reported_as_corrupt(tmp_path: Path) -> None:
    good = save(conv_relu(), tmp_path / "good.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(good.read_bytes()[:200])
    with pytest.raises(ModelParseError, match=r"not a valid ONNX model.*truncated or corrupt"):
        import_model(bad)


def test_every_parser_error_is_collected(tmp_path: Path) -> None:
    model = conv_relu()
    model.graph.node.append(helper.make_node("NoSuchOpA", ["y"], ["z1"], name="first_bad"))
    model.graph.node.append(helper.make_node("NoSuchOpB", ["y"], ["z2"], name="second_bad"))
    model.graph.output.append(helper.make_tensor_value_info("z1", 1, None))
    path = save(model, tmp_path / "bad_ops.onnx")
    with pytest.raises(ModelParseError) as info:
        import_model(path)
    problems = info.value.problems
    assert any("node 2 (first_bad, NoSuchOpA)" in p for p in problems), problems
    assert any("node 3 (second_bad, NoSuchOpB)" in p for p in problems), problems
    assert str(path) in str(info.value)
