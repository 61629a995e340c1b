"""Printing for the CLI: human summaries on stdout, errors on stderr, or JSON."""

from __future__ import annotations

import sys
from typing import Any


def print_error(message: str) -> None:
    """Print an error message (no traceback) to stderr."""
    print(f"error: {message}", file=sys.stderr)


def print_warning(message: str) -> None:
    """Print a warning (something failed, but the command goes on) to stderr."""
    print(f"warning: {message}", file=sys.stderr)


def print_json(data: Any) -> None:
    """Print ``data`` as JSON on stdout."""
    import json  # not at start-up: most commands print no JSON

    print(json.dumps(data, indent=2, default=str))


def console(stderr: bool = False) -> Any:
    """A rich console (imported lazily)."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def human_bytes(n: int | None) -> str:
    """1536 -> '1.5 KiB'."""
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"
