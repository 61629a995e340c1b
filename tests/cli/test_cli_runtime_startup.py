"""The run/bench/verify/refit commands keep ``--help`` light: no heavy runtime is imported."""

from __future__ import annotations

import os
import subprocess
import sys

HEAVY = ("onnxruntime", "tensorrt", "tensorrt_rtx", "cv2", "tensorflow", "torch", "cuda", "onnx")
# numpy is not heavy, but --help does not need it either.
HEAVY += ("numpy",)

SCRIPT = """
import sys
from trtimport.cli import build_parser
parser = build_parser()
for command in ("run", "bench", "verify", "refit"):
    try:
        parser.parse_args([command, "--help"])
    except SystemExit:
        pass
print(sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[1:])))
"""


def test_help_imports_nothing_heavy():
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, *HEAVY], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
    assert "--input NAME=FILE|NAME:SHAPE" in result.stdout
    assert "--export-times FILE" in result.stdout and "--layerwise" in result.stdout


WIDTH_SCRIPT = """
import sys
from trtimport.cli import build_parser
parser = build_parser("convert")
help_text = parser._subparsers._group_actions[0].choices["convert"].format_help()
print(max(len(line) for line in help_text.splitlines()), "shutil" in sys.modules)
"""


def test_help_width_comes_from_columns_without_importing_shutil():
    # argparse would import shutil (with zlib, bz2 and lzma) to ask the terminal's width.
    widest = {}
    for columns in (60, 140):
        result = subprocess.run(
            [sys.executable, "-c", WIDTH_SCRIPT],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "COLUMNS": str(columns)},
        )
        assert result.returncode == 0, result.stderr
        width, shutil_imported = result.stdout.split()
        assert shutil_imported == "False"
        widest[columns] = int(width)
    # Help text wraps to the width (a raw description or a long flag may stick out at 60).
    assert widest[60] < widest[140] <= 138
