"""The run/bench/verify/refit commands keep ``--help`` light: no heavy runtime is imported."""

from __future__ import annotations

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
