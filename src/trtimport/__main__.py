"""``python -m trtimport``."""

from trtimport.cli import run

run()
