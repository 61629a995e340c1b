"""Fake plugins and a fake installed distribution, registered on a fresh manager per test."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trtimport import hookimpl
from trtimport.core.importer import ImportContext, Importer

FAKE_MAGIC = b"FAKEMODEL"


class FakeImporter(Importer):
    """Claims files that start with FAKE_MAGIC, and the ``.fake`` extension."""

    name = "fake"
    description = "a format that exists only in tests"
    extensions = (".fake",)

    def detect(self, path: Path, head: bytes) -> bool:
        """Claim files starting with the magic bytes."""
        return head.startswith(FAKE_MAGIC)

    def populate(self, ctx: ImportContext) -> None:
        """One identity layer on a 1x4 input."""
        trt = ctx.backend.trt
        x = ctx.network.add_input("x", trt.float32, (1, 4))
        layer = ctx.network.add_identity(x)
        layer.get_output(0).name = "y"
        ctx.network.mark_output(layer.get_output(0))


class FakePlugin:
    """Registers :class:`FakeImporter`."""

    @hookimpl
    def trtimport_register_importers(self, register: Callable[[Importer], None]) -> None:
        """Register the fake importer."""
        register(FakeImporter())


class RivalImporter(FakeImporter):
    """Another importer that claims the same content (for ambiguity tests)."""

    name = "rival"


class RivalPlugin:
    """Registers :class:`RivalImporter`."""

    @hookimpl
    def trtimport_register_importers(self, register: Callable[[Importer], None]) -> None:
        """Register the rival importer."""
        register(RivalImporter())


class DuplicatePlugin:
    """Registers a second importer under the name ``onnx``."""

    @hookimpl
    def trtimport_register_importers(self, register: Callable[[Importer], None]) -> None:
        """Register an importer whose name clashes with the built-in ONNX importer."""
        clash = type("ClashImporter", (FakeImporter,), {"name": "onnx"})
        register(clash())


class DetectPlugin:
    """Claims any file whose name contains ``claim-me`` as format ``fake``."""

    @hookimpl
    def trtimport_detect_format(self, path: Path) -> str | None:
        """Claim by name."""
        return "fake" if "claim-me" in path.name else None


class CaffeLayerPlugin:
    """Registers a converter for a custom Caffe layer type."""

    @staticmethod
    def convert(ctx: Any, layer: Any, inputs: list[Any]) -> list[Any]:
        """Pass the inputs through."""
        return inputs

    @hookimpl
    def trtimport_register_caffe_layers(self, register: Callable[..., None]) -> None:
        """Register the ``FakeCaffeLayer`` type."""
        register("FakeCaffeLayer", self.convert)


class BuilderPlugin:
    """Sets the builder optimization level to 1 on every config."""

    @hookimpl
    def trtimport_configure_builder(self, config: Any, options: Any, backend: Any) -> None:
        """Adjust the config."""
        config.builder_optimization_level = 1


class FakeDistribution(importlib.metadata.Distribution):
    """An installed distribution that exists only in memory: metadata and entry points."""

    def __init__(self, name: str, version: str, entry_points: dict[str, str]) -> None:
        self._files = {
            "METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
            "entry_points.txt": "[trtimport]\n"
            + "".join(f"{k} = {v}\n" for k, v in entry_points.items()),
        }

    def read_text(self, filename: str) -> str | None:
        """The metadata files."""
        return self._files.get(filename)

    def locate_file(self, path: str | Any) -> Path:
        """Not needed: nothing is installed."""
        return Path(str(path))


class CommandPlugin:
    """Adds ``trtimport hello``, whose module is this one (HELP, add_arguments, run below)."""

    @hookimpl
    def trtimport_register_commands(self, register: Callable[[str, str], None]) -> None:
        register("hello", __name__)


#: ``trtimport hello``: the command :class:`CommandPlugin` registers.
HELP = "say hello (a test plugin's command)"


def add_arguments(parser: Any) -> None:
    """``trtimport hello NAME``."""
    parser.add_argument("name")


def run(args: Any) -> int:
    """Print a greeting."""
    print(f"hello {args.name}")
    return 0
