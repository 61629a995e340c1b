"""Regenerate ``caffe_pb2.py`` and ``caffe_pb2.pyi`` from ``caffe.proto`` with grpcio-tools' protoc.

Run ``python -m trtimport.importers.caffe.proto.regen`` after editing ``caffe.proto`` and commit
the three files together; a test regenerates them and checks they match.
"""

from __future__ import annotations

import sys
from pathlib import Path

PROTO_DIR = Path(__file__).resolve().parent
PROTO_FILE = PROTO_DIR / "caffe.proto"


def generate(out_dir: Path, proto_file: Path = PROTO_FILE) -> list[Path]:
    """Compile ``proto_file`` (default ``caffe.proto``) into ``out_dir``; returns the stubs."""
    from grpc_tools import protoc

    out_dir.mkdir(parents=True, exist_ok=True)
    status = protoc.main(
        [
            "protoc",
            f"--proto_path={proto_file.parent}",
            f"--python_out={out_dir}",
            f"--pyi_out={out_dir}",
            str(proto_file),
        ]
    )
    if status != 0:
        raise RuntimeError(f"protoc failed on {proto_file} (exit status {status})")
    return [out_dir / f"{proto_file.stem}_pb2{suffix}" for suffix in (".py", ".pyi")]


def main(proto_file: Path = PROTO_FILE) -> int:
    """Regenerate the committed stubs of ``proto_file`` in place, beside it."""
    for path in generate(proto_file.parent, proto_file):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
