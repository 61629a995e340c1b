"""``python -m trtimport``."""

import sys

from trtimport.cli import main

sys.exit(main())
