"""The hooks a trtimport plugin can implement.

A plugin is a module (or object) with functions decorated by :data:`hookimpl` whose names match
the specs below. Third-party plugins are found through the ``trtimport`` entry-point group; the
built-in importers are plugins registered the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from trtimport.core.backend import Backend
    from trtimport.core.importer import Importer
    from trtimport.core.options import BuildOptions

PROJECT = "trtimport"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def trtimport_register_importers(register: Callable[[Importer], None]) -> None:
    """Register importers by calling ``register(importer)`` once per format.

    Every plugin's implementation runs. Two importers with the same ``name`` are an error that
    names both plugins.
    """


@hookspec(firstresult=True)
def trtimport_detect_format(path: Path) -> str | None:
    """Claim a model by returning a registered format name, or return None.

    firstresult: the first non-None answer wins. Third-party plugins run before the built-in
    detection table, so a plugin can claim files the built-ins would also accept.
    """


@hookspec
def trtimport_register_caffe_layers(register: Callable[..., None]) -> None:
    """Register converters for custom Caffe layer types.

    Call ``register(layer_type, converter)``; see ``docs/caffe.md`` ("Custom layers") for the
    converter's signature. Every plugin's implementation runs; registering a type twice is an
    error.
    """


@hookspec
def trtimport_register_commands(register: Callable[[str, str], None]) -> None:
    """Add ``trtimport`` subcommands: call ``register(name, module)`` once per command.

    ``module`` is the dotted name of a module with ``HELP``, ``add_arguments(parser)`` and
    ``run(args) -> int`` (optionally ``DESCRIPTION``), like the built-in commands in
    ``trtimport.cli``; it is imported only when the command runs, so keep heavy imports inside
    ``run``. ``trtimport formats`` lists these commands (the full ``--help`` lists only the
    built-in ones, to start fast). Every plugin's implementation runs; a name that is
    registered twice or that a built-in command has is an error.
    """


@hookspec
def trtimport_configure_builder(config: Any, options: BuildOptions, backend: Backend) -> None:
    """Adjust the TensorRT ``IBuilderConfig`` after trtimport has applied ``options``.

    Every plugin's implementation runs, in registration order (last registered first).
    """
