"""Plugin discovery on a fresh manager per test: entry points, allowlist, failures, duplicates."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from plugin_fakes import DuplicatePlugin, FakeDistribution, FakePlugin

from trtimport.errors import PluginLoadError
from trtimport.plugins.manager import _may_declare_group, load_plugins

GOOD = FakeDistribution("trtimport-fake", "1.2.3", {"fakefmt": "fake_plugin_module"})
BROKEN = FakeDistribution("trtimport-broken", "0.1", {"broken": "fake_broken_plugin"})


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRTIMPORT_PLUGINS", raising=False)
    monkeypatch.delenv("TRTIMPORT_DISABLE_PLUGIN_AUTOLOAD", raising=False)


def test_builtin_onnx_importer_is_registered_like_a_plugin() -> None:
    plugins = load_plugins(entry_points=[])
    entry = plugins.importer("onnx")
    assert entry is not None
    assert entry.plugin == "trtimport.importers.onnx"
    assert entry.distribution == "trtimport"


def test_entry_point_plugin_is_discovered_with_its_distribution() -> None:
    plugins = load_plugins(entry_points=list(GOOD.entry_points))
    entry = plugins.importer("fake")
    assert entry is not None
    assert (entry.plugin, entry.distribution, entry.version) == (
        "fakefmt",
        "trtimport-fake",
        "1.2.3",
    )
    assert plugins.load_errors == []


def test_broken_autoloaded_plugin_is_reported_and_others_keep_working() -> None:
    plugins = load_plugins(entry_points=[*BROKEN.entry_points, *GOOD.entry_points])
    assert plugins.importer("fake") is not None
    assert plugins.importer("onnx") is not None
    [error] = plugins.load_errors
    assert isinstance(error, PluginLoadError)
    message = str(error)
    assert "'broken'" in message and "'trtimport-broken'" in message
    assert "some_missing_dependency" in message
    assert isinstance(error.__cause__, ImportError)


def test_broken_allowlisted_plugin_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRTIMPORT_PLUGINS", "trtimport-broken")
    with pytest.raises(PluginLoadError, match="trtimport-broken"):
        load_plugins(entry_points=[*BROKEN.entry_points, *GOOD.entry_points])


def test_allowlist_loads_only_the_named_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRTIMPORT_PLUGINS", "fakefmt")
    plugins = load_plugins(entry_points=[*BROKEN.entry_points, *GOOD.entry_points])
    assert plugins.importer("fake") is not None
    assert plugins.load_errors == []  # the broken plugin was not even imported


def test_allowlist_accepts_distribution_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRTIMPORT_PLUGINS", " trtimport-fake , ")
    plugins = load_plugins(entry_points=list(GOOD.entry_points))
    assert plugins.importer("fake") is not None


def test_allowlist_name_that_nothing_provides_is_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRTIMPORT_PLUGINS", "fakefmt,nosuchplugin")
    with pytest.raises(PluginLoadError, match="'nosuchplugin'"):
        load_plugins(entry_points=list(GOOD.entry_points))


def test_disable_autoload_skips_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRTIMPORT_DISABLE_PLUGIN_AUTOLOAD", "1")
    plugins = load_plugins(entry_points=[*BROKEN.entry_points, *GOOD.entry_points])
    assert plugins.importer("fake") is None
    assert plugins.importer("onnx") is not None
    assert plugins.load_errors == []


def test_disable_autoload_still_loads_allowlisted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRTIMPORT_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setenv("TRTIMPORT_PLUGINS", "fakefmt")
    plugins = load_plugins(entry_points=list(GOOD.entry_points))
    assert plugins.importer("fake") is not None


def test_duplicate_format_name_names_both_plugins() -> None:
    with pytest.raises(PluginLoadError) as info:
        load_plugins([DuplicatePlugin()], entry_points=[])
    message = str(info.value)
    assert "format 'onnx' is registered twice" in message
    assert "trtimport.importers.onnx" in message
    assert "DuplicatePlugin" in message


def test_duplicate_between_entry_point_and_direct_plugin_names_both() -> None:
    with pytest.raises(PluginLoadError) as info:
        load_plugins([FakePlugin()], entry_points=list(GOOD.entry_points))
    message = str(info.value)
    assert "'fakefmt' (trtimport-fake)" in message
    assert "plugin_fakes.FakePlugin" in message


def test_each_call_gets_a_fresh_manager() -> None:
    with_fake = load_plugins([FakePlugin()], entry_points=[])
    without = load_plugins(entry_points=[])
    assert with_fake.importer("fake") is not None
    assert without.importer("fake") is None
    assert with_fake.manager is not without.manager


def _dist_info(folder: Path, group: str) -> None:
    info = folder / "trtimport_ondisk-2.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: trtimport-ondisk\nVersion: 2.0\n")
    (info / "entry_points.txt").write_text(f"[{group}]\nfakefmt = fake_plugin_module\n")


def test_installed_distribution_is_discovered_from_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _dist_info(tmp_path, "trtimport")
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins = load_plugins()
    entry = plugins.importer("fake")
    assert entry is not None
    assert (entry.distribution, entry.version) == ("trtimport-ondisk", "2.0")


def test_quick_scan_skips_metadata_only_when_no_distribution_declares_the_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _dist_info(tmp_path, "console_scripts")
    monkeypatch.setattr(sys, "path", [str(tmp_path)])
    assert not _may_declare_group()
    zipped = tmp_path / "plugins.zip"
    zipped.write_bytes(b"PK\x05\x06" + bytes(18))
    monkeypatch.setattr(sys, "path", [str(tmp_path), str(zipped)])
    assert _may_declare_group()
