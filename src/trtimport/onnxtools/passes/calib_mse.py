"""The ``mse`` calibration method: the range that minimizes the int8 round-trip error.

For each candidate threshold ``t`` the histogram's bin centres are quantized symmetrically
to int8 with scale ``t / 127`` (values beyond ``t`` saturate) and the squared error of the
round trip, weighted by the bin counts, is summed; the threshold with the smallest total wins.
Unlike the entropy method it weighs what clipping costs in the tensor's own units, so a rare
but large value (the ink of a sparse image) is clipped only when that really is cheaper than
the coarser steps keeping it would need.
"""

from __future__ import annotations

import numpy as np

#: Candidate thresholds are tried every this many bins (2048 bins -> 256 candidates).
_STRIDE = 8
#: Thresholds below this fraction of the largest magnitude are not considered.
_SMALLEST = 1 / 64


def mse_amax(hist: np.ndarray, amax: float, levels: int = 127) -> float:
    """The threshold in (0, amax] with the least squared int8 quantization error."""
    hist = hist.astype(np.float64)
    nbins = len(hist)
    if hist.sum() == 0 or amax == 0:
        return amax
    width = amax / nbins
    centres = (np.arange(nbins) + 0.5) * width
    first = max(1, int(nbins * _SMALLEST))
    candidates = np.arange(first, nbins + 1, _STRIDE, dtype=np.float64)
    if candidates[-1] != nbins:
        candidates = np.append(candidates, nbins)
    thresholds = candidates * width
    best_t, best_err = amax, np.inf
    # Chunks of candidates keep the candidate x bin matrix small.
    for chunk in np.array_split(thresholds, max(1, len(thresholds) // 32)):
        scale = chunk[:, None] / levels
        q = np.clip(np.rint(centres[None, :] / scale), -levels, levels) * scale
        err = ((centres[None, :] - q) ** 2) @ hist
        i = int(np.argmin(err))
        if err[i] < best_err:
            best_err, best_t = float(err[i]), float(chunk[i])
    return min(amax, best_t)
