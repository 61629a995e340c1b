"""Regenerate the ``uff_schema_pb2`` stubs from ``uff_schema.proto`` with grpcio-tools' protoc.

Run ``python -m trtimport.importers.uff.proto.regen`` after editing ``uff_schema.proto`` and commit
the three files together; a test regenerates them and checks they match.
"""

from __future__ import annotations

import sys
from pathlib import Path

from trtimport.importers.caffe.proto import regen as caffe_regen

PROTO_DIR = Path(__file__).resolve().parent
PROTO_FILE = PROTO_DIR / "uff_schema.proto"


def generate(out_dir: Path) -> list[Path]:
    """Compile ``uff_schema.proto`` into ``out_dir``; returns the generated files."""
    return caffe_regen.generate(out_dir, PROTO_FILE)


def main() -> int:
    """Regenerate the committed stubs in place."""
    return caffe_regen.main(PROTO_FILE)


if __name__ == "__main__":
    sys.exit(main())
