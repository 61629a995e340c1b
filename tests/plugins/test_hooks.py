"""One test per hook in trtimport.plugins.hookspecs, each on a fresh manager."""

from __future__ import annotations

from pathlib import Path

import pytest
from plugin_fakes import (
    FAKE_MAGIC,
    BuilderPlugin,
    CaffeLayerPlugin,
    CommandPlugin,
    DetectPlugin,
    FakeImporter,
    FakePlugin,
)

from trtimport.detect import detect_format
from trtimport.errors import PluginLoadError
from trtimport.importers.caffe.registry import build_registry
from trtimport.plugins.manager import load_plugins


def test_trtimport_register_importers() -> None:
    plugins = load_plugins([FakePlugin()], entry_points=[])
    entry = plugins.importer("fake")
    assert entry is not None
    assert isinstance(entry.importer, FakeImporter)
    assert entry.plugin == "plugin_fakes.FakePlugin"


def test_trtimport_detect_format(tmp_path: Path) -> None:
    model = tmp_path / "claim-me.bin"
    model.write_bytes(b"\x00" * 16)
    plugins = load_plugins([FakePlugin(), DetectPlugin()], entry_points=[])
    assert plugins.hook.trtimport_detect_format(path=model) == "fake"
    assert detect_format(model, plugins).importer.name == "fake"
    other = tmp_path / "other.bin"
    other.write_bytes(FAKE_MAGIC)
    assert plugins.hook.trtimport_detect_format(path=other) is None


def test_trtimport_register_caffe_layers() -> None:
    plugins = load_plugins([CaffeLayerPlugin()], entry_points=[], builtins=False)
    registry = build_registry(plugins)
    assert registry.types() == ["FakeCaffeLayer"]
    entry = registry.get("FakeCaffeLayer")
    assert entry is not None and entry.origin == "plugin_fakes.CaffeLayerPlugin"
    assert entry.converter(None, None, [1, 2]) == [1, 2]  # type: ignore[call-arg]


def test_trtimport_register_commands() -> None:
    plugins = load_plugins([CommandPlugin()], entry_points=[])
    assert plugins.commands() == {"caffe": "trtimport.cli.caffe", "hello": "plugin_fakes"}
    twice = load_plugins([CommandPlugin(), CommandPlugin()], entry_points=[])
    with pytest.raises(PluginLoadError, match="command 'hello' is registered twice"):
        twice.commands()


def test_a_plugin_command_runs_from_the_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from trtimport.cli import main
    from trtimport.plugins import manager

    with_command = load_plugins([CommandPlugin()], entry_points=[])
    monkeypatch.setattr(manager, "load_plugins", lambda: with_command)
    assert main(["hello", "world"]) == 0
    assert capsys.readouterr().out == "hello world\n"
    assert main(["formats"]) == 0
    assert "commands from plugins: trtimport caffe, trtimport hello" in capsys.readouterr().out


def test_trtimport_configure_builder() -> None:
    trt = pytest.importorskip("tensorrt_rtx")
    from trtimport.build.builder import make_config
    from trtimport.core.backend import get_backend
    from trtimport.core.options import BuildOptions

    backend = get_backend("tensorrt_rtx")
    builder = trt.Builder(trt.Logger(trt.Logger.ERROR))
    network = builder.create_network(0)
    plugins = load_plugins([BuilderPlugin()], entry_points=[])
    options = BuildOptions(optimization_level=3)
    config, _ = make_config(backend, builder, network, options, [], plugins)
    assert config.builder_optimization_level == 1  # the plugin ran after the options
    plain, _ = make_config(backend, builder, network, options, [], load_plugins(entry_points=[]))
    assert plain.builder_optimization_level == 3
