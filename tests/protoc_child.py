"""Compile a .proto with grpcio-tools' protoc in a child process.

protoc crashes (a segmentation fault) inside a process that has loaded TensorFlow, which other
tests of the same pytest run may have done; a child process is always clean.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

_CODE = (
    "import sys; from pathlib import Path; "
    "from trtimport.importers.caffe.proto.regen import generate; "
    "print('\\n'.join(map(str, generate(Path(sys.argv[1]), Path(sys.argv[2])))))"
)


def compile_proto(proto: Path, out: Path) -> list[Path]:
    """The Python stubs of ``proto`` generated into ``out`` (skips without grpcio-tools)."""
    pytest.importorskip("grpc_tools")
    done = subprocess.run(
        [sys.executable, "-c", _CODE, str(out), str(proto)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return [Path(line) for line in done.stdout.splitlines()]
