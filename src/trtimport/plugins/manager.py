"""Plugin discovery: built-in importers and third-party plugins, on a fresh manager per call.

Environment variables:

``TRTIMPORT_PLUGINS``
    Comma-separated allowlist of entry-point names or distribution names to load; when set,
    only those third-party plugins load (built-ins always do).
``TRTIMPORT_DISABLE_PLUGIN_AUTOLOAD``
    Any non-empty value: load no third-party plugins (unless allowlisted).

When a plugin fails to import: a plugin the user asked for by name in ``TRTIMPORT_PLUGINS``
(or an allowlisted name that no installed distribution provides) raises
:class:`PluginLoadError`, because the user explicitly wanted it. An autoloaded plugin that fails
becomes a :class:`PluginLoadError` in :attr:`Plugins.load_errors`: the other formats keep
working, and the CLI prints it as a warning (``convert`` and ``formats``, on stderr).
Registering a format name twice is always an error naming both plugins.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pluggy

from trtimport.core.importer import Importer
from trtimport.errors import PluginLoadError
from trtimport.plugins import hookspecs

if TYPE_CHECKING:
    import importlib.metadata

ENTRY_POINT_GROUP = "trtimport"

#: Built-in plugins, registered exactly like third-party ones (importing them is cheap).
BUILTIN_PLUGINS: tuple[str, ...] = (
    "trtimport.importers.onnx",
    "trtimport.importers.caffe",
    "trtimport.importers.tensorflow",
    "trtimport.importers.uff",
    "trtimport.importers.script",
)


@dataclass(frozen=True)
class ImporterEntry:
    """A registered importer and who provided it."""

    importer: Importer
    plugin: str
    distribution: str
    version: str


@dataclass
class Plugins:
    """The loaded plugins of one call: the manager, the importers, and what failed to load."""

    manager: pluggy.PluginManager
    importers: dict[str, ImporterEntry] = field(default_factory=dict)
    load_errors: list[PluginLoadError] = field(default_factory=list)
    #: Plugin name -> (distribution, version) for plugins loaded from entry points.
    distributions: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def hook(self) -> Any:
        """The manager's hook relay (``plugins.hook.trtimport_detect_format(path=...)``)."""
        return self.manager.hook

    def importer(self, name: str) -> ImporterEntry | None:
        """The importer registered under ``name``, if any."""
        return self.importers.get(name)

    def commands(self) -> dict[str, str]:
        """Subcommands the plugins add (``trtimport_register_commands``): name -> module."""
        commands: dict[str, str] = {}
        owners: dict[str, str] = {}

        def make_register(origin: PluginOrigin) -> Callable[[str, str], None]:
            def register(name: str, module: str) -> None:
                if not (isinstance(name, str) and name and isinstance(module, str) and module):
                    raise PluginLoadError(
                        f"plugin '{origin[0]}' registered command {name!r} with {module!r}: "
                        "expected register(name: str, module: str)"
                    )
                if name in commands:
                    raise PluginLoadError(
                        f"command '{name}' is registered twice: by plugin '{owners[name]}' and "
                        f"by plugin '{origin[0]}'. Uninstall one of them or leave one out with "
                        "TRTIMPORT_PLUGINS."
                    )
                commands[name], owners[name] = module, origin[0]

            return register

        walk_registrations(self, "trtimport_register_commands", "commands", make_register)
        return commands


def _trtimport_version() -> str:
    from trtimport import __version__

    return __version__


def _plugin_origin(
    manager: pluggy.PluginManager, plugin: object, distributions: dict[str, tuple[str, str]]
) -> tuple[str, str, str]:
    name = manager.get_name(plugin) or repr(plugin)
    if name in distributions:
        return name, *distributions[name]
    if name.startswith("trtimport."):
        return name, "trtimport", _trtimport_version()
    return name, "(registered directly)", ""


def _allowlist() -> set[str] | None:
    raw = os.environ.get("TRTIMPORT_PLUGINS", "").strip()
    if not raw:
        return None
    return {p.strip() for p in raw.split(",") if p.strip()}


def _load_entry_points(
    manager: pluggy.PluginManager,
    entry_points: Iterable[importlib.metadata.EntryPoint],
    errors: list[PluginLoadError],
    distributions: dict[str, tuple[str, str]],
) -> None:
    allow = _allowlist()
    autoload = not os.environ.get("TRTIMPORT_DISABLE_PLUGIN_AUTOLOAD")
    if allow is None and not autoload:
        return
    matched: set[str] = set()
    for ep in entry_points:
        dist = ep.dist
        dist_name = dist.metadata["name"] if dist is not None else "(unknown distribution)"
        if allow is not None:
            if ep.name not in allow and dist_name not in allow:
                continue
            matched |= {ep.name, dist_name}
        if manager.get_plugin(ep.name) is not None or manager.is_blocked(ep.name):
            continue
        try:
            plugin = ep.load()
            manager.register(plugin, name=ep.name)
        except Exception as err:  # a plugin may raise anything while importing
            error = PluginLoadError(
                f"plugin '{ep.name}' from distribution '{dist_name}' failed to load: "
                f"{type(err).__name__}: {err}. Reinstall or upgrade it, or leave it out with "
                "TRTIMPORT_PLUGINS / TRTIMPORT_DISABLE_PLUGIN_AUTOLOAD."
            )
            error.__cause__ = err
            if allow is not None:
                raise error from err
            errors.append(error)
            continue
        distributions[ep.name] = (dist_name, dist.version if dist is not None else "")
    unknown = sorted((allow or set()) - matched - set(BUILTIN_PLUGINS))
    if unknown:
        raise PluginLoadError(
            f"TRTIMPORT_PLUGINS names {', '.join(repr(n) for n in unknown)}, but no installed "
            f"distribution provides a '{ENTRY_POINT_GROUP}' entry point of that name. Install "
            "the plugin or remove the name from TRTIMPORT_PLUGINS."
        )


_GROUP_HEADER = re.compile(rb"^\s*\[\s*" + ENTRY_POINT_GROUP.encode() + rb"\s*\]", re.MULTILINE)


def _may_declare_group() -> bool:
    """False only when certainly no installed distribution declares a ``trtimport`` entry point.

    ``importlib.metadata`` costs ~35 ms of CPU to import (email, zipfile, csv…) on every run,
    a tenth of the time TensorRT itself takes to load; this scan of the ``entry_points.txt``
    files on ``sys.path`` costs under a millisecond. Anything it cannot read as a plain folder
    (a zip on the path) counts as "maybe", and then ``importlib.metadata`` decides.
    """
    group = ENTRY_POINT_GROUP.encode()
    for entry in sys.path:
        folder = entry or "."
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            continue
        except OSError:  # a zip file, an unreadable folder: maybe
            return True
        for name in names:
            if not name.endswith((".dist-info", ".egg-info")):
                continue
            try:
                with open(os.path.join(folder, name, "entry_points.txt"), "rb") as f:
                    text = f.read()
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError:
                return True
            if group in text and _GROUP_HEADER.search(text):
                return True
    return False


def _discovered_entry_points() -> Iterable[importlib.metadata.EntryPoint]:
    if not _may_declare_group():
        return ()
    import importlib.metadata

    return importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)


def load_plugins(
    extra_plugins: Iterable[object] = (),
    *,
    entry_points: Iterable[importlib.metadata.EntryPoint] | None = None,
    builtins: bool = True,
) -> Plugins:
    """A fresh plugin manager with built-ins, entry-point plugins and ``extra_plugins``.

    ``entry_points`` replaces discovery from installed distributions (tests pass fakes).
    """
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    errors: list[PluginLoadError] = []
    if builtins:
        for module_name in BUILTIN_PLUGINS:
            module: ModuleType = importlib.import_module(module_name)
            manager.register(module, name=module_name)
    eps = _discovered_entry_points() if entry_points is None else entry_points
    distributions: dict[str, tuple[str, str]] = {}
    _load_entry_points(manager, eps, errors, distributions)
    for plugin in extra_plugins:
        manager.register(plugin, name=_unique_name(manager, plugin))
    plugins = Plugins(manager, load_errors=errors, distributions=distributions)
    _collect_importers(plugins)
    return plugins


def _unique_name(manager: pluggy.PluginManager, plugin: object) -> str:
    """A readable name for a plugin passed in directly: its module, or module.Class."""
    if isinstance(plugin, ModuleType):
        base = plugin.__name__
    else:
        base = f"{type(plugin).__module__}.{type(plugin).__qualname__}"
    name, n = base, 1
    while manager.has_plugin(name):
        n += 1
        name = f"{base}#{n}"
    return name


#: Who provided a plugin: (plugin name, distribution, version).
PluginOrigin = tuple[str, str, str]


def walk_registrations(
    plugins: Plugins,
    hook_name: str,
    what: str,
    make_register: Callable[[PluginOrigin], Callable[..., None]],
) -> None:
    """Run every implementation of a register-callback hook (the one walker for every registry).

    Implementations run in registration order (built-ins, entry points, extras), so a clash
    names the first owner first; each gets its own ``register`` from ``make_register(origin)``.
    Anything a plugin raises other than :class:`PluginLoadError` becomes one, naming the
    plugin and ``what`` it was registering.
    """
    manager = plugins.manager
    for impl in getattr(manager.hook, hook_name).get_hookimpls():
        origin = _plugin_origin(manager, impl.plugin, plugins.distributions)
        try:
            impl.function(register=make_register(origin))
        except PluginLoadError:
            raise
        except Exception as err:  # a plugin may raise anything
            raise PluginLoadError(
                f"plugin '{origin[0]}' ({origin[1]}) failed while registering {what}: "
                f"{type(err).__name__}: {err}"
            ) from err


def _collect_importers(plugins: Plugins) -> None:
    def make_register(origin: PluginOrigin) -> Callable[[Importer], None]:
        def register(importer: Importer) -> None:
            if not isinstance(importer, Importer) or not importer.name:
                raise PluginLoadError(
                    f"plugin '{origin[0]}' registered {importer!r}, which is not an Importer "
                    "with a name"
                )
            existing = plugins.importers.get(importer.name)
            if existing is not None:
                raise PluginLoadError(
                    f"format '{importer.name}' is registered twice: by plugin "
                    f"'{existing.plugin}' ({existing.distribution}) and by plugin "
                    f"'{origin[0]}' ({origin[1]}). Uninstall one of them or leave one out "
                    "with TRTIMPORT_PLUGINS."
                )
            plugins.importers[importer.name] = ImporterEntry(importer, *origin)

        return register

    walk_registrations(plugins, "trtimport_register_importers", "importers", make_register)
