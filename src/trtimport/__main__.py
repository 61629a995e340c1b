"""``python -m trtimport``.

Python puts the current folder first on ``sys.path`` for ``-m``; a folder holding ``onnx.py``
or a stray ``*.dist-info`` with trtimport entry points would then shadow real modules or load
as a plugin. It is dropped before anything else is imported.
"""

import _signal as signal  # the C module: ``signal``'s enum wrappers cost start-up time
import os
import sys

if sys.path and sys.path[0] in ("", os.getcwd()):
    del sys.path[0]
# Until the command installs its handlers, Ctrl-C ends the process at once (nothing is
# written yet) instead of showing a traceback from whatever was being imported.
if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
    signal.signal(signal.SIGINT, signal.SIG_DFL)

from trtimport.cli import run

run()
