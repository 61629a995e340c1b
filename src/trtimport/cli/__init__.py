"""The command line: a thin layer over the library.

``trtimport MODEL …`` is short for ``trtimport convert MODEL …``. Each subcommand lives in its
own module with ``HELP``, ``add_arguments(parser)`` and ``run(args)``; modules import heavy
libraries only inside ``run`` so that ``--help`` stays fast. The built-in commands are in
:data:`COMMANDS`; plugins add theirs with the ``trtimport_register_commands`` hook (the Caffe
importer adds ``caffe``).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import NoReturn

from trtimport import __version__

#: Built-in subcommand name -> module (relative to this package).
COMMANDS: dict[str, str] = {
    "convert": "convert",
    "formats": "formats",
    "info": "info",
    "run": "run",
    "bench": "bench",
    "verify": "verify",
    "refit": "refit",
}

DESCRIPTION = """\
Get models of any format into NVIDIA TensorRT.

  trtimport MODEL [options]        import MODEL and build an engine (same as `convert`)
  trtimport COMMAND --help         help for one command
  trtimport formats                the installed formats, and the commands plugins add
                                   (`trtimport caffe …` comes from the Caffe importer)
"""


def _terminal_columns() -> int:
    """The terminal's width as ``shutil.get_terminal_size`` finds it: ``COLUMNS``, then stdout."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns > 0:
        return columns
    stdout = sys.__stdout__
    if stdout is None:
        return 80
    try:
        return os.get_terminal_size(stdout.fileno()).columns or 80
    except (AttributeError, ValueError, OSError):
        return 80


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse's raw-description formatter, told the width up front.

    Left to itself, argparse imports ``shutil`` (and with it zlib, bz2 and lzma) to ask the
    terminal's width, every run, since each ``add_argument`` makes a formatter.
    """

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        super().__init__(
            prog,
            indent_increment,
            max_help_position,
            _terminal_columns() - 2 if width is None else width,
        )


def plugin_commands() -> dict[str, str]:
    """Subcommands added by plugins: name -> module (a built-in's name is refused)."""
    from trtimport.errors import PluginLoadError
    from trtimport.plugins.manager import load_plugins

    commands = load_plugins().commands()
    clash = sorted(set(commands) & set(COMMANDS))
    if clash:
        raise PluginLoadError(
            f"a plugin registers the command(s) {', '.join(clash)}, which trtimport itself has; "
            "uninstall the plugin or leave it out with TRTIMPORT_PLUGINS"
        )
    return commands


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser, exiting with code 1 on a usage error as every other problem does
    (docs/cli.md), after its usage line and one ``error:`` line."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(USAGE_EXIT_CODE, f"error: {message}\n")


#: The exit code of every problem the user can fix, usage errors included.
USAGE_EXIT_CODE = 1


def _command_module(name: str, plugins: dict[str, str]) -> ModuleType:
    if name in COMMANDS:
        return importlib.import_module(f"trtimport.cli.{COMMANDS[name]}")
    return importlib.import_module(plugins[name])


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser with every subcommand, or with just ``only``.

    Running one command needs only its own parser; importing every command module for it cost
    ~40 ms of CPU per run (docs/performance.md).
    """
    parser = ArgumentParser(
        prog="trtimport",
        description=DESCRIPTION,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"trtimport {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    plugins: dict[str, str] = {}
    if only in COMMANDS:
        names = [only]
    elif only is None or only.startswith("-"):
        # The full help lists the built-in commands only: loading every plugin to list theirs
        # would cost start-up time on every --help; `formats` lists them.
        names = [] if only == "--version" else list(COMMANDS)
    else:
        plugins = plugin_commands()
        names = [only] if only in plugins else list(COMMANDS)
    for name in names:
        module = _command_module(name, plugins)
        cmd = sub.add_parser(
            name,
            help=module.HELP,
            description=getattr(module, "DESCRIPTION", module.HELP),
            formatter_class=HelpFormatter,
        )
        module.add_arguments(cmd)
        cmd.set_defaults(_module=module)
    return parser


def _normalize(argv: list[str]) -> list[str]:
    """Insert ``convert`` when the first argument is a model rather than a command.

    An existing file or folder is a model without asking the plugins for their commands.
    """
    if not argv or argv[0].startswith("-") or argv[0] in COMMANDS:
        return argv
    if os.path.exists(argv[0]) or argv[0] not in plugin_commands():
        return ["convert", *argv]
    return argv


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code.

    The command's signal handlers (:mod:`trtimport.cli.guard`) are installed once the arguments
    are parsed: until then nothing is written, and ``--help`` or a usage error needs none of it.
    """
    from trtimport.errors import TrtImportError

    guard: ModuleType | None = None
    try:
        args_list = _normalize(list(sys.argv[1:] if argv is None else argv))
        parser = build_parser(args_list[0] if args_list else None)
        if not args_list:
            parser.print_help()
            return 0
        args = parser.parse_args(args_list)
        from trtimport.cli import guard as checks

        guard = checks
        checks.install_signal_handlers()
        checks.prepare(args)
        return int(args._module.run(args) or 0)
    except KeyboardInterrupt:
        return _interrupted()
    except TrtImportError as err:
        if _caused_by_interrupt(err):
            return _interrupted()
        _print_error(str(err))
        return err.exit_code
    except OSError as err:
        from trtimport.core.output_files import os_error_message

        _print_error(os_error_message(err))
        return USAGE_EXIT_CODE
    except MemoryError:
        _print_error("out of memory: the model or data is larger than this machine can hold")
        return USAGE_EXIT_CODE
    except RecursionError:
        _print_error("the input is nested too deeply to process (a corrupt or hostile file?)")
        return USAGE_EXIT_CODE
    except Exception as err:
        if _caused_by_interrupt(err):
            return _interrupted()
        raise
    finally:
        # Every output is complete now: a SIGTERM or SIGHUP may end the process at once.
        if guard is not None:
            guard.restore_signal_handlers()


def _print_error(message: str) -> None:
    from trtimport.cli.output import print_error

    print_error(message)


def _caused_by_interrupt(err: BaseException) -> bool:
    from trtimport.cli.guard import caused_by_interrupt

    return caused_by_interrupt(err)


def _interrupted() -> int:
    from trtimport.cli.guard import signal_exit_code

    print("\ninterrupted: no partial output was left", file=sys.stderr)
    return signal_exit_code()


def run() -> NoReturn:
    """The ``trtimport`` command and ``python -m trtimport``: :func:`main`, then a quick exit.

    Once the command is done, SIGINT, SIGTERM and SIGHUP end the process at once (every
    output is complete by then), so that one arriving during the exit shows no traceback.
    """
    code = main()
    from trtimport.cli.guard import quiet_exit

    quiet_exit()
    exit_without_teardown(code)


def exit_without_teardown(code: int) -> NoReturn:
    """End the process with ``code``, skipping the interpreter's own shutdown.

    That shutdown frees every module and object one by one, 10-20 ms after a build, which the
    operating system does at once when the process ends. What others can observe of a normal
    exit is done first: the exit handlers run (``atexit``, including plugins' and the
    finalizers that remove work folders), and stdout and stderr are flushed. While a thread
    other than a daemon is still running, this is a normal exit, which waits for it.
    """
    import atexit
    import threading

    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    busy = any(
        t is not threading.main_thread() and not t.daemon and t.is_alive()
        for t in threading.enumerate()
    )
    if run_exit_handlers is None or busy:
        sys.exit(code)
    run_exit_handlers()
    for stream in (sys.stdout, sys.stderr):
        # A closed pipe (``| head``) or a closed stream is no reason to fail now.
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
