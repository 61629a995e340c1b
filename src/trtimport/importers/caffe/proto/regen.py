"""Regenerate ``caffe_pb2.py`` and ``caffe_pb2.pyi`` from ``caffe.proto`` with grpcio-tools' protoc.

Run ``python -m trtimport.importers.caffe.proto.regen`` after editing ``caffe.proto`` and commit
the three files together; a test regenerates them and checks they match.
"""

from __future__ import annotations

import sys
from pathlib import Path

PROTO_DIR = Path(__file__).resolve().parent
PROTO_FILE = PROTO_DIR / "caffe.proto"
GENERATED = ("caffe_pb2.py", "caffe_pb2.pyi")


def generate(out_dir: Path) -> list[Path]:
    """Compile ``caffe.proto`` into ``out_dir``; returns the generated files."""
    from grpc_tools import protoc

    out_dir.mkdir(parents=True, exist_ok=True)
    status = protoc.main(
        [
            "protoc",
            f"--proto_path={PROTO_DIR}",
            f"--python_out={out_dir}",
            f"--pyi_out={out_dir}",
            str(PROTO_FILE),
        ]
    )
    if status != 0:
        raise RuntimeError(f"protoc failed on {PROTO_FILE} (exit status {status})")
    return [out_dir / name for name in GENERATED]


def main() -> int:
    """Regenerate the committed stubs in place."""
    for path in generate(PROTO_DIR):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
