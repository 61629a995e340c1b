"""A plugin module loaded through a fake entry point (``fake_plugin_module``)."""

from __future__ import annotations

from collections.abc import Callable

from plugin_fakes import FakeImporter

from trtimport import hookimpl
from trtimport.core.importer import Importer


@hookimpl
def trtimport_register_importers(register: Callable[[Importer], None]) -> None:
    """Register the fake importer."""
    register(FakeImporter())
