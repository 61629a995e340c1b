"""``trtimport formats``: the model formats the installed plugins support."""

from __future__ import annotations

import argparse

HELP = "list model formats, the plugins that provide them, missing dependencies, plugin commands"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``formats``."""
    parser.add_argument("--json", action="store_true", help="print the list as JSON")


def format_rows() -> tuple[list[dict[str, object]], list[str], dict[str, str]]:
    """One row per registered format, the plugin load errors, the plugins' commands."""
    from trtimport.plugins.manager import load_plugins

    plugins = load_plugins()
    rows: list[dict[str, object]] = []
    for name in sorted(plugins.importers):
        entry = plugins.importers[name]
        imp = entry.importer
        missing = imp.missing_requirements()
        rows.append(
            {
                "format": name,
                "description": imp.description,
                "extensions": list(imp.extensions),
                "plugin": entry.plugin,
                "distribution": entry.distribution,
                "version": entry.version,
                "available": not missing,
                "missing": missing,
                "install": f"pip install trtimport[{imp.extra}]" if missing and imp.extra else None,
            }
        )
    return rows, [str(e) for e in plugins.load_errors], plugins.commands()


def run(args: argparse.Namespace) -> int:
    """Run ``formats``."""
    rows, errors, commands = format_rows()
    if args.json:
        from trtimport.cli.output import print_json

        print_json({"formats": rows, "plugin_errors": errors, "commands": commands})
        return 0
    width = max((len(str(r["format"])) for r in rows), default=6)
    for r in rows:
        exts = " ".join(r["extensions"]) or "-"  # type: ignore[arg-type]
        if r["available"]:
            status = "ok"
        elif r["install"]:
            status = f"needs `{r['install']}`"
        else:
            status = "needs " + ", ".join(r["missing"])  # type: ignore[arg-type]
        print(
            f"{r['format']:<{width}}  {exts:<28} {r['plugin']} "
            f"({r['distribution']} {r['version']})  {status}"
        )
        print(f"{'':<{width}}  {r['description']}")
    if commands:
        print("commands from plugins: " + ", ".join(f"trtimport {c}" for c in sorted(commands)))
    if errors:
        from trtimport.cli.output import print_warning

        for err in errors:
            print_warning(err)
    return 0
