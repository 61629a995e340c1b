"""The ``trtimport`` console script: the same start as ``python -m trtimport``.

The script pip writes imports this module (and the light ``trtimport`` package) and calls
:func:`run`, which lets Ctrl-C end the process at once (nothing is written yet) while the CLI's
modules are imported, instead of a traceback from whatever was being imported; the CLI then
installs its own handlers.
"""

from __future__ import annotations

import _signal as signal  # the C module: ``signal``'s enum wrappers cost start-up time
from typing import NoReturn


def run() -> NoReturn:
    """Run the CLI (:func:`trtimport.cli.run`) with a quiet Ctrl-C until it takes over."""
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    from trtimport.cli import run as run_cli

    run_cli()
