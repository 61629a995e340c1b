"""Which importer handles a model: ``--format`` > plugins' detect hook > content > extension."""

from __future__ import annotations

import os
from pathlib import Path

from trtimport.core.files import read_head
from trtimport.core.input_files import check_input
from trtimport.errors import ModelParseError, UnknownFormatError, UsageError
from trtimport.plugins.manager import ImporterEntry, Plugins


def _known(plugins: Plugins) -> str:
    return ", ".join(sorted(plugins.importers)) or "(none)"


def _broken_hint(plugins: Plugins) -> str:
    if not plugins.load_errors:
        return ""
    return "\nSome plugins failed to load:\n" + "\n".join(f"  - {e}" for e in plugins.load_errors)


def check_model_path(path: Path) -> None:
    """Fail at once if ``path`` (which exists: :func:`check_input` ran first) is unreadable or
    an empty file, saying which."""
    if not os.access(path, os.R_OK | (os.X_OK if path.is_dir() else 0)):
        raise UsageError(
            f"{path}: permission denied; make it readable (chmod +r) or run as a user who may "
            "read it"
        )
    if path.is_file() and path.stat().st_size == 0:
        raise ModelParseError(f"{path}: the file is empty; export or download the model again")


def detect_format(path: Path, plugins: Plugins, explicit: str | None = None) -> ImporterEntry:
    """Pick the importer for ``path``; ambiguity and no match are errors that list candidates.

    ``path`` must be a regular file or a folder (never a FIFO or a device, which could block
    or never end), whatever the format.
    """
    check_input(path, "model", folder_ok=True)
    check_model_path(path)
    if explicit:
        entry = plugins.importer(explicit)
        if entry is None:
            raise UnknownFormatError(
                f"unknown format '{explicit}' (--format). Known formats: {_known(plugins)}. "
                "`trtimport formats` lists them with the plugins that provide them."
                + _broken_hint(plugins)
            )
        return entry

    claimed = plugins.hook.trtimport_detect_format(path=path)
    if claimed:
        entry = plugins.importer(claimed)
        if entry is None:
            raise UnknownFormatError(
                f"{path}: a plugin detected format '{claimed}', but no importer is registered "
                f"under that name (known: {_known(plugins)})"
            )
        return entry

    head = read_head(path)
    by_content = [e for e in plugins.importers.values() if e.importer.detect(path, head)]
    if len(by_content) == 1:
        return by_content[0]
    if len(by_content) > 1:
        names = ", ".join(sorted(e.importer.name for e in by_content))
        raise UnknownFormatError(
            f"{path}: the content matches several formats ({names}); choose one with --format"
        )

    suffix = "".join(path.suffixes[-1:]).lower()
    by_extension = [e for e in plugins.importers.values() if suffix in e.importer.extensions]
    if len(by_extension) == 1:
        return by_extension[0]
    if len(by_extension) > 1:
        names = ", ".join(sorted(e.importer.name for e in by_extension))
        raise UnknownFormatError(
            f"{path}: the extension '{suffix}' fits several formats ({names}); choose one "
            "with --format"
        )
    what = "folder" if path.is_dir() else "file"
    raise UnknownFormatError(
        f"{path}: cannot tell this {what}'s model format from its content or name. "
        f"Known formats: {_known(plugins)}; pass --format if it is one of them, or install "
        "the plugin for its format." + _broken_hint(plugins)
    )
