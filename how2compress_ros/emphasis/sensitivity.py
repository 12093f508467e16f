"""Detector-sensitivity emphasis targets: the macroblocks whose quality the detector's output
depends on, which are not always the macroblocks of the objects it finds.

For a raw frame x and its low-quality version x~ (the frame coded at one low QP), let
D(z) = sum over anchors of (s_a(z) - s_a(x))^2, with s_a the detector's per-anchor person
probability. Integrated gradients along the straight path x~ -> x attribute D(x~) - D(x) = D(x~)
to pixels (completeness: the attributions sum to it, up to the Riemann error of ``steps``
points); summed per 16x16 macroblock they say how much restoring each macroblock's quality
restores the detector's output. Macroblocks ranked by attribution get emphasis levels by
cumulative share: the fewest macroblocks that hold ``shares[0]`` of the total get the top level,
the fewest holding ``shares[1]`` at least the next, and so on; the rest get level 0.

On vtest (a static mall camera with small people) maps of people's macroblocks lose bitrate
against uniform QP at equal F1, because the detector also needs the floor and walls around them;
maps built this way win there (see the README). It is AccMPEG's gradient-based importance,
integrated along the degradation instead of taken at one point.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Protocol, Sequence, Tuple

import numpy as np
import torch

from how2compress_ros.codec import mb_grid
from how2compress_ros.emphasis.proxy import per_macroblock


class ScoringDetector(Protocol):
    def person_scores(self, rgb: torch.Tensor) -> torch.Tensor:
        """Per-anchor person probabilities of an (H, W, 3) float tensor in 0..255, differentiable."""


@dataclass
class SensitivityConfig:
    low_qp: int = 40                                   # QP of the low-quality version
    steps: int = 4                                     # integration points (midpoint rule)
    shares: Tuple[float, ...] = (0.5, 0.7, 0.85, 0.95)  # cumulative share for levels 4, 3, 2, 1
    min_total: float = 0.01                            # below this D(x~) the frame needs nothing


def macroblock_attribution(detector: ScoringDetector, raw: np.ndarray, low: np.ndarray,
                           steps: int = 4) -> np.ndarray:
    """Integrated-gradient attribution of D(low) per macroblock (rows, cols of the MB grid);
    positive = restoring that macroblock brings the detector's output back towards the raw
    frame's."""
    xh = torch.from_numpy(np.ascontiguousarray(raw)).float()
    xl = torch.from_numpy(np.ascontiguousarray(low)).float()
    with torch.no_grad():
        target = detector.person_scores(xh)
    grad = torch.zeros_like(xh)
    for k in range(steps):
        z = (xl + (k + 0.5) / steps * (xh - xl)).requires_grad_(True)
        d = ((detector.person_scores(z) - target) ** 2).sum()
        grad += torch.autograd.grad(d, z)[0] / steps
    return per_macroblock((grad * (xl - xh)).sum(-1).numpy(), np.nansum)


def frame_attribution(detector: ScoringDetector, rgb: np.ndarray,
                      config: SensitivityConfig = SensitivityConfig()) -> np.ndarray:
    """``macroblock_attribution`` of a frame against itself coded as an I-frame at
    ``config.low_qp``."""
    from how2compress_ros.emphasis.training import encode_decode

    low, _ = encode_decode(rgb, np.zeros(mb_grid(rgb.shape[1], rgb.shape[0]), np.int64), [config.low_qp])
    return macroblock_attribution(detector, rgb, low, config.steps)


def levels_from_attribution(attribution: np.ndarray, shares: Sequence[float] = SensitivityConfig.shares,
                            min_total: float = 0.0) -> np.ndarray:
    """Emphasis levels (len(shares) + 1 of them) from per-macroblock attribution by cumulative
    share of the positive total; all zero when that total is below ``min_total``."""
    flat = np.clip(attribution.ravel(), 0, None)
    total = flat.sum()
    levels = np.zeros(flat.size, np.int64)
    if total <= 0 or total < min_total:
        return levels.reshape(attribution.shape)
    order = np.argsort(-flat, kind="stable")
    before = (np.cumsum(flat[order]) - flat[order]) / total     # share held by higher-ranked MBs
    top = len(shares)
    for k, share in enumerate(shares):
        take = order[(before < share) & (flat[order] > 0)]
        levels[take] = np.maximum(levels[take], top - k)
    return levels.reshape(attribution.shape)


def frame_attributions(detector: ScoringDetector, frames: Sequence[np.ndarray],
                       config: SensitivityConfig = SensitivityConfig(), progress: bool = True) -> List[np.ndarray]:
    """``frame_attribution`` of each frame, with a progress bar."""
    from tqdm import tqdm

    return [frame_attribution(detector, rgb, config)
            for rgb in tqdm(frames, desc="detector sensitivity", disable=not progress)]


def attribution_shares(attribution: np.ndarray, min_total: float = 0.0) -> np.ndarray:
    """A frame's positive attribution as shares of its total; zero below ``min_total``."""
    pos = np.clip(attribution, 0, None)
    total = pos.sum()
    return pos / total if total > 0 and total >= min_total else np.zeros_like(pos)


def temporal_mean(attributions: Sequence[np.ndarray], radius: int, min_total: float = 0.0) -> List[np.ndarray]:
    """Each frame's attribution as shares of its positive total (zero where that total is below
    ``min_total``), averaged over the frames within ``radius`` of it in the sequence.

    Single-frame maps are unstable: on consecutive frames of vtest, bikes and Megamind the
    macroblocks holding 90 % of the sensitivity overlap by only a third (IoU 0.31-0.33), so an EA
    model that sees one frame can at best learn their average, and a map that changes every frame
    costs P-frame bits. The mean over a few frames is what a model can predict."""
    if radius <= 0:
        return list(attributions)
    shares = [attribution_shares(a, min_total) for a in attributions]
    return [np.mean(shares[max(0, i - radius):i + radius + 1], axis=0) for i in range(len(shares))]


def neighbour_mean(attributions: Sequence[np.ndarray], before: int, after: int,
                   min_total: float = 0.0) -> List[np.ndarray]:
    """Each frame's map from the OTHER frames around it: the mean of the shares (as in
    ``temporal_mean``) of the ``before`` frames before it and the ``after`` frames after it,
    never its own; a flat map (every macroblock alike) for a frame with no such neighbour.

    An oracle built this way knows the detector's true sensitivity on every frame except the one
    it codes. The frame's own sensitivity needs the detector run on that frame at two qualities,
    which no EA model has; a model that predicts the map from the frame's pixels can learn the
    part of it that the frame's content fixes. On the validation frames the trained model holds
    about as much of each frame's sensitivity as the mean of its four neighbours' maps does
    (vtest 0.670 against 0.676), and more than the previous frame's map (0.542).
    ``after=0`` is causal: the edge could compute it one frame late."""
    if before < 0 or after < 0 or before + after == 0:
        raise ValueError("neighbour_mean needs before, after >= 0 and at least one neighbour")
    shares = [attribution_shares(a, min_total) for a in attributions]
    out = []
    for i in range(len(shares)):
        around = shares[max(0, i - before):i] + shares[i + 1:i + after + 1]
        out.append(np.mean(around, axis=0) if around else np.full_like(shares[i], 1.0 / shares[i].size))
    return out


def sensitivity_levels(attributions: Sequence[np.ndarray], config: SensitivityConfig = SensitivityConfig(),
                       radius: int = 0) -> List[np.ndarray]:
    """Emphasis-level targets for the frames of one clip from their ``frame_attributions``; with
    ``radius`` > 0 from their ``temporal_mean`` (``config.min_total`` then applies to each frame
    before averaging)."""
    if radius > 0:
        smoothed = temporal_mean(attributions, radius, config.min_total)
        return [levels_from_attribution(a, config.shares) for a in smoothed]
    return [levels_from_attribution(a, config.shares, config.min_total) for a in attributions]
