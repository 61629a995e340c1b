"""Deterministic synthetic images for calibration tests and the INT8 benchmark.

    python tools/synthetic_images.py sparse OUT.npz --count 64 --seed 0
    python tools/synthetic_images.py natural OUT.npz --count 64 --seed 0 --shape 3x48x48

- ``sparse``: what a camera pipeline feeds a digit reader: a dim, noisy background with a few
  bars of ink (anti-aliased strokes of random angle, length and width), values in [0, 1],
  shape N x 1 x 28 x 28. Most pixels are background; the ink is rare and bright, so a method
  that clips a tensor's rare large values clips exactly what matters.
- ``natural``: images with the statistics of photographs: a 1/f ("pink") noise field per
  channel, correlated across channels, plus a few flat shapes with sharp edges, values in
  [0, 255], shape N x C x H x W (BGR order is irrelevant: the channels are alike).

Same arguments, same arrays, on every machine (numpy's PCG64 generator, seeded).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def sparse_bars(count: int, seed: int, size: int = 28) -> np.ndarray:
    """``count`` sparse images (bars of ink on a noisy background), float32 in [0, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    out = np.empty((count, 1, size, size), np.float32)
    for n in range(count):
        level = rng.uniform(0.0, 0.15)
        image = np.clip(rng.normal(level, rng.uniform(0.01, 0.06), (size, size)), 0, 1)
        for _ in range(rng.integers(1, 5)):
            cy, cx = rng.uniform(size * 0.2, size * 0.8, 2)
            angle = rng.uniform(0, np.pi)
            half = rng.uniform(size * 0.1, size * 0.35)
            width = rng.uniform(0.6, 2.0)
            ink = rng.uniform(0.6, 1.0)
            dy, dx = np.sin(angle), np.cos(angle)
            along = np.clip((yy - cy) * dy + (xx - cx) * dx, -half, half)
            dist = np.hypot(yy - (cy + along * dy), xx - (cx + along * dx))
            stroke = np.clip(width + 0.5 - dist, 0, 1) * ink
            image = np.maximum(image, stroke)
        out[n, 0] = image
    return out


def natural_like(count: int, seed: int, shape: tuple[int, int, int]) -> np.ndarray:
    """``count`` photograph-like images (1/f noise and flat shapes), float32 in [0, 255]."""
    channels, h, w = shape
    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    falloff = np.maximum(np.hypot(fy, fx), 1.0 / max(h, w)) ** -1.5
    yy, xx = np.mgrid[0:h, 0:w]
    out = np.empty((count, channels, h, w), np.float32)
    for n in range(count):
        shared = _field(rng, falloff, h, w)
        image = np.stack([0.7 * shared + 0.3 * _field(rng, falloff, h, w) for _ in range(channels)])
        image = (image - image.min()) / (np.ptp(image) or 1.0)
        for _ in range(rng.integers(1, 4)):
            y0, x0 = rng.integers(0, h), rng.integers(0, w)
            ry, rx = rng.integers(2, max(3, h // 3)), rng.integers(2, max(3, w // 3))
            mask = ((yy - y0) / ry) ** 2 + ((xx - x0) / rx) ** 2 <= 1
            image[:, mask] = rng.uniform(0, 1, (channels, 1))
        contrast = rng.uniform(0.5, 1.0)
        out[n] = np.clip(255 * (0.5 + contrast * (image - 0.5)), 0, 255)
    return out


def _field(rng: np.random.Generator, falloff: np.ndarray, h: int, w: int) -> np.ndarray:
    noise = rng.normal(size=falloff.shape) + 1j * rng.normal(size=falloff.shape)
    return np.fft.irfft2(noise * falloff, s=(h, w))


def main() -> None:
    """Write images to an .npz (array ``x``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=("sparse", "natural"))
    parser.add_argument("output", type=Path)
    parser.add_argument("--count", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shape", default="3x224x224", help="CxHxW for natural images")
    args = parser.parse_args()
    if args.kind == "sparse":
        images = sparse_bars(args.count, args.seed)
    else:
        c, h, w = (int(d) for d in args.shape.split("x"))
        images = natural_like(args.count, args.seed, (c, h, w))
    np.savez(args.output, x=images)


if __name__ == "__main__":
    main()
