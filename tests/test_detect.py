"""Format detection: --format > plugin hook > content > extension; ambiguity lists candidates."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[0] / "plugins"))

from plugin_fakes import FAKE_MAGIC, DetectPlugin, FakePlugin, RivalPlugin

from trtimport.detect import detect_format
from trtimport.errors import UnknownFormatError, UsageError
from trtimport.plugins.manager import load_plugins

EXAMPLE_ONNX = Path(__file__).resolve().parents[1] / "examples" / "onnx" / "tiny_cnn.onnx"


@pytest.fixture
def plugins():
    return load_plugins([FakePlugin()], entry_points=[])


def _copy(src: Path, dest: Path) -> Path:
    dest.write_bytes(src.read_bytes())
    return dest


def test_onnx_content_wins_over_extension(tmp_path: Path, plugins) -> None:
    model = _copy(EXAMPLE_ONNX, tmp_path / "model.fake")
    assert detect_format(model, plugins).importer.name == "onnx"


def test_onnx_detected_without_extension(tmp_path: Path, plugins) -> None:
    model = _copy(EXAMPLE_ONNX, tmp_path / "model")
    assert detect_format(model, plugins).importer.name == "onnx"


def test_plugin_content_detection(tmp_path: Path, plugins) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(FAKE_MAGIC + b"rest")
    assert detect_format(model, plugins).importer.name == "fake"


def test_extension_is_the_fallback(tmp_path: Path, plugins) -> None:
    model = tmp_path / "model.FAKE"
    model.write_bytes(b"no magic here")
    assert detect_format(model, plugins).importer.name == "fake"


def test_explicit_format_always_wins(tmp_path: Path, plugins) -> None:
    model = _copy(EXAMPLE_ONNX, tmp_path / "model.onnx")
    assert detect_format(model, plugins, "fake").importer.name == "fake"


def test_detect_hook_wins_over_content(tmp_path: Path) -> None:
    plugins = load_plugins([FakePlugin(), DetectPlugin()], entry_points=[])
    model = _copy(EXAMPLE_ONNX, tmp_path / "claim-me.onnx")
    assert detect_format(model, plugins).importer.name == "fake"


def test_ambiguous_content_lists_candidates(tmp_path: Path) -> None:
    plugins = load_plugins([FakePlugin(), RivalPlugin()], entry_points=[])
    model = tmp_path / "model.bin"
    model.write_bytes(FAKE_MAGIC)
    with pytest.raises(UnknownFormatError, match=r"several formats \(fake, rival\).*--format"):
        detect_format(model, plugins)


def test_ambiguous_extension_lists_candidates(tmp_path: Path) -> None:
    plugins = load_plugins([FakePlugin(), RivalPlugin()], entry_points=[])
    model = tmp_path / "model.fake"
    model.write_bytes(b"nothing")
    with pytest.raises(UnknownFormatError, match=r"'\.fake' fits several formats \(fake, rival\)"):
        detect_format(model, plugins)


def test_unknown_format_names_known_formats(tmp_path: Path, plugins) -> None:
    model = tmp_path / "model.xyz"
    model.write_bytes(b"nothing")
    with pytest.raises(UnknownFormatError, match=r"Known formats: [^;]*\bfake\b[^;]*\bonnx\b"):
        detect_format(model, plugins)


def test_unknown_explicit_format(tmp_path: Path, plugins) -> None:
    with pytest.raises(UnknownFormatError, match="unknown format 'mxnet'"):
        detect_format(tmp_path, plugins, "mxnet")


def test_missing_file(tmp_path: Path, plugins) -> None:
    with pytest.raises(UsageError, match="no such file"):
        detect_format(tmp_path / "absent.onnx", plugins)
