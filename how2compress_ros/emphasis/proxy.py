"""Proxy Emphasis Thresholds (Alg. 1) and the Region-aware Dual Exploration that builds the
proxy emphasis target (Alg. 2) for How2Compress training. Plain numpy."""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

from how2compress_ros.detectors.base import Box

MB = 16


def macroblock_ssim(raw: np.ndarray, compressed: np.ndarray) -> np.ndarray:
    """Mean SSIM (luma, 11x11 Gaussian window, sigma 1.5) of every 16x16 macroblock.
    Returns (rows, cols); partial macroblocks at the border average what they cover."""
    import cv2

    def luma(rgb):
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float64)

    x, y = luma(raw), luma(compressed)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    blur = lambda z: cv2.GaussianBlur(z, (11, 11), 1.5)  # noqa: E731
    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    ssim = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return per_macroblock(ssim, np.nanmean)


def per_macroblock(values: np.ndarray, reduce=np.nanmean) -> np.ndarray:
    """Reduce an (H, W) per-pixel map to the (rows, cols) macroblock grid with a NaN-ignoring
    ``reduce`` (np.nanmean, np.nansum): partial macroblocks at the border reduce only the pixels
    they cover."""
    h, w = values.shape
    rows, cols = (h + MB - 1) // MB, (w + MB - 1) // MB
    padded = np.full((rows * MB, cols * MB), np.nan)
    padded[:h, :w] = values
    return reduce(padded.reshape(rows, MB, cols, MB), axis=(1, 3))


def proxy_emphasis_thresholds(ssim_maps: Sequence[np.ndarray], roi_percentile: float = 90.0,
                              bg_percentile: float = 50.0) -> Tuple[float, float]:
    """Alg. 1: SSIM thresholds (tau_roi, tau_bg) from the per-macroblock SSIM between raw and
    lowest-quality frames of a few representative frames."""
    d = np.concatenate([np.asarray(m).reshape(-1) for m in ssim_maps])
    return float(np.percentile(d, roi_percentile)), float(np.percentile(d, bg_percentile))


def roi_mask(boxes: Sequence[Box], grid: Tuple[int, int]) -> np.ndarray:
    """Macroblocks overlapped by any box (pseudo-RoI from a pretrained detector)."""
    rows, cols = grid
    mask = np.zeros((rows, cols), bool)
    for b in boxes:
        r0, r1 = int(max(b.y_min, 0) // MB), int(min(np.ceil(b.y_max / MB), rows))
        c0, c1 = int(max(b.x_min, 0) // MB), int(min(np.ceil(b.x_max / MB), cols))
        mask[r0:max(r1, r0 + 1), c0:max(c1, c0 + 1)] = True
    return mask


def dilate_mask(mask: np.ndarray, steps: int = 1) -> np.ndarray:
    """Grow a macroblock mask by ``steps`` macroblocks (4-neighbourhood)."""
    out = mask.copy()
    for _ in range(steps):
        grown = out.copy()
        grown[1:] |= out[:-1]
        grown[:-1] |= out[1:]
        grown[:, 1:] |= out[:, :-1]
        grown[:, :-1] |= out[:, 1:]
        out = grown
    return out


def dual_exploration(em: np.ndarray, proxy: np.ndarray, roi: np.ndarray, ssim: np.ndarray,
                     tau_roi: float, tau_bg: float, p: float, levels: int,
                     rng: np.random.Generator) -> np.ndarray:
    """One step of Alg. 2's Region-aware Dual Exploration.

    RoI macroblocks that are not trivially saturated (SSIM <= tau_roi) are, with probability p,
    sent upwards: a level drawn uniformly from [em, highest]; otherwise they keep their proxy.
    Background macroblocks that are resilient (SSIM >= tau_bg) are, with probability p, sent
    downwards: a level drawn from [lowest, em]; every other background macroblock has its proxy
    lowered by one level. Returns the new proxy target (ints in [0, levels - 1]).
    """
    em = em.astype(np.int64)
    new = proxy.astype(np.int64).copy()
    draw = rng.random(em.shape) < p
    up = roi & draw & (ssim <= tau_roi)
    new[up] = rng.integers(em[up], levels)
    bg = ~roi
    down = bg & draw & (ssim >= tau_bg)
    new[down] = rng.integers(0, em[down] + 1)
    rest = bg & ~down
    new[rest] = new[rest] - 1
    return np.clip(new, 0, levels - 1)


def raise_missed_objects(proxy: np.ndarray, missed: Sequence[Box], levels: int) -> np.ndarray:
    """Detector feedback: macroblocks of reference objects the detector missed on the
    compressed frame get one more emphasis level in the proxy target."""
    if not missed:
        return proxy
    mask = roi_mask(missed, proxy.shape)
    out = proxy.copy()
    out[mask] = np.minimum(out[mask] + 1, levels - 1)
    return out
