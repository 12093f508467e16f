"""Pretraining of the Emphasis-Assignment model on pseudo-RoI or level targets, before Region-aware Emphasis Routing.

The paper starts RER from an ImageNet-pretrained MobileViTv2, whose features already separate
objects from background. No such weights can be fetched here, and a randomly initialised
backbone trained by RER on a few hundred frames does not learn where people are: its maps
miss most of the people in new frames of the same scene. This stage stands in for the
pretrained backbone: the model learns to put the highest emphasis level on the detector's
pseudo-RoI (the same RoI RER uses) and the lowest elsewhere, with RoI and background
macroblocks weighted equally, on augmented frames (random scale 0.5-1, crop, horizontal flip,
brightness and contrast), so that it sees people at many sizes and positions. It needs no
encoding or detection per step, so it runs on many more frames than RER can afford. RER then
fine-tunes the levels from there.

The target can also be a map of levels instead of an RoI: ``emphasis/sensitivity.py`` derives
one from the detector's sensitivity to each macroblock's quality (``h2c_train --target
sensitivity``). The loss is then CE against those levels, emphasised (level > 0) and level-0
macroblocks averaged separately.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from how2compress_ros.emphasis.model import MB, EmphasisModel, batchnorm_layers, images_to_tensor
from how2compress_ros.emphasis.training import group_by_size, region_balanced_mean, same_size_batches


@dataclass
class PretrainConfig:
    epochs: int = 10
    batch_size: int = 8
    lr: float = 2e-3
    weight_decay: float = 0.01
    scale: Tuple[float, float] = (0.5, 1.0)   # random rescale of the frame (whole macroblocks)
    crop: Tuple[int, int] = (18, 24)          # crop at most this many macroblock rows, cols
    seed: int = 0


def augment(rgb: np.ndarray, roi: np.ndarray, scale: float, crop: Tuple[int, int],
            rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """Rescale a frame and its macroblock target (a bool RoI mask or an int level map) to whole
    macroblocks, crop a window of at most ``crop`` macroblocks at a random macroblock offset,
    flip horizontally with probability 0.5, jitter brightness and contrast. Returns (rgb uint8,
    target of the same dtype) on the cropped grid."""
    import cv2

    rows, cols = roi.shape
    r, c = max(2, round(rows * scale)), max(2, round(cols * scale))
    h, w = rgb.shape[:2]
    padded = np.pad(rgb, ((0, rows * MB - h), (0, cols * MB - w), (0, 0)), mode="edge")
    img = cv2.resize(padded, (c * MB, r * MB), interpolation=cv2.INTER_AREA)
    mask = cv2.resize(roi.astype(np.float32), (c, r), interpolation=cv2.INTER_AREA)
    mask = mask > 0.25 if roi.dtype == bool else np.rint(mask).astype(roi.dtype)
    cr, cc = min(r, crop[0]), min(c, crop[1])
    r0, c0 = rng.integers(0, r - cr + 1), rng.integers(0, c - cc + 1)
    img = img[r0 * MB:(r0 + cr) * MB, c0 * MB:(c0 + cc) * MB]
    mask = mask[r0:r0 + cr, c0:c0 + cc]
    if rng.random() < 0.5:
        img, mask = img[:, ::-1], mask[:, ::-1]
    a, b = rng.uniform(0.7, 1.3), rng.uniform(-20, 20)
    img = np.clip(img.astype(np.float32) * a + b, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(img), np.ascontiguousarray(mask)


def level_targets(target: torch.Tensor, levels: int) -> torch.Tensor:
    """Levels to learn: the highest on an RoI mask and the lowest elsewhere; a level map as is."""
    return target.long() * (levels - 1) if target.dtype == torch.bool else target.long()


def balanced_ce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against ``level_targets``, emphasised (RoI / level > 0) and level-0
    macroblocks averaged separately."""
    levels = level_targets(target, logits.shape[1])
    return region_balanced_mean(F.cross_entropy(logits, levels, reduction="none"), levels > 0)


class EmphasisPretrainer:
    """Pretrains ``model`` on (rgb, target) pairs, target a bool RoI mask or an int level map per
    macroblock; frames of one size go in one batch, each batch shares one scale and crop size."""

    def __init__(self, model: EmphasisModel, frames: Sequence[Tuple[np.ndarray, np.ndarray]],
                 config: PretrainConfig):
        if not frames:
            raise ValueError("no pretraining frames")
        self.model, self.frames, self.cfg = model, list(frames), config
        self.groups = group_by_size([rgb for rgb, _ in self.frames])
        self.rng = np.random.default_rng(config.seed)
        self.opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        steps = config.epochs * sum(-(-len(g) // config.batch_size) for g in self.groups.values())
        self.sched = torch.optim.lr_scheduler.OneCycleLR(self.opt, max_lr=config.lr, total_steps=max(steps, 1))
        self.history: List[dict] = []

    def _step(self, idx: Sequence[int]) -> Tuple[float, float, float]:
        scale = self.rng.uniform(*self.cfg.scale)
        pairs = [augment(*self.frames[i], scale, self.cfg.crop, self.rng) for i in idx]
        # one crop size per batch: the smallest any frame allowed
        rows = min(m.shape[0] for _, m in pairs)
        cols = min(m.shape[1] for _, m in pairs)
        target = torch.from_numpy(np.stack([p[1][:rows, :cols] for p in pairs]))
        logits = self.model(images_to_tensor([p[0][:rows * MB, :cols * MB] for p in pairs]))
        loss = balanced_ce(logits, target)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        self.sched.step()
        want = level_targets(target, self.model.config.levels) > 0
        got = logits.argmax(1) > 0
        recall = (got & want).sum().item() / max(want.sum().item(), 1)
        false_bg = (got & ~want).sum().item() / max((~want).sum().item(), 1)
        return loss.item(), recall, false_bg

    def train(self, progress: bool = True, log=None) -> List[dict]:
        from tqdm import tqdm

        self.model.train()
        for epoch in range(self.cfg.epochs):
            sums, n = np.zeros(3), 0
            batches = same_size_batches(self.groups, self.cfg.batch_size, self.rng)
            bar = tqdm(batches, desc=f"pretrain {epoch + 1}/{self.cfg.epochs}", disable=not progress)
            for b in bar:
                vals = self._step(b)
                sums += np.array(vals) * len(b)
                n += len(b)
                bar.set_postfix(loss=f"{vals[0]:.3f}", emph=f"{vals[1]:.2f}", bg_emph=f"{vals[2]:.3f}")
            m = sums / n
            stats = {"epoch": epoch + 1, "loss": float(m[0]), "target_emphasised": float(m[1]),
                     "background_emphasised": float(m[2])}
            self.history.append(stats)
            if log:
                log(stats)
        self.recalibrate_batchnorm()
        self.model.eval()
        return self.history

    @torch.no_grad()
    def recalibrate_batchnorm(self, per_size: int = 32) -> None:
        """Re-estimate BatchNorm's running statistics as a plain average over whole frames (no
        augmentation), so that inference normalises like training did: after a short run the
        exponential averages still remember their initial values."""
        norms = batchnorm_layers(self.model)
        saved = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None            # cumulative average
        self.model.train()
        bs = self.cfg.batch_size
        for group in self.groups.values():
            chosen = group[:per_size]
            for i in range(0, len(chosen), bs):
                self.model(images_to_tensor([self.frames[k][0] for k in chosen[i:i + bs]]))
        for m, mom in zip(norms, saved):
            m.momentum = mom

