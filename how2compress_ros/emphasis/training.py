"""Training of the Emphasis-Assignment model by Region-aware Emphasis Routing (How2Compress
Alg. 1-2, appendix A.6 defaults).

Per training frame, once: reference detections on the raw frame (pseudo-RoI), the frame encoded
at the lowest quality, and per-macroblock SSIM between the two; the Proxy Emphasis Thresholds
(percentiles 90 / 50) come from the SSIM of all training frames.

Per iteration: the model predicts emphasis maps; Region-aware Dual Exploration (probability p,
0.8 decaying by 0.1 per epoch) updates each frame's proxy target; the frame is encoded as an
I-frame with the predicted map, decoded and run through the detector. Detector feedback:
Acc_c = F1 of the compressed-frame detections against the raw-frame ones (so Acc_r = 1), and
the macroblocks of objects the detector missed get one level more in the proxy target.
Loss = lambda1 * |Acc_c - Acc_r| + lambda2 * penalised CE(em, proxy), with penalty
[1, 1.3, 1.6, 1.9, 2.2] indexed by the predicted level to discourage excess quality.

Two additions to the paper's recipe, both switchable: the pseudo-RoI takes detections down to
``roi_score`` (0.3) dilated by ``roi_dilate`` macroblocks, so people the detector is unsure of
are emphasised too; and with ``balanced_ce`` the alignment loss averages RoI and background
macroblocks separately (RoI is ~5 % of a frame, so plain CE barely sees it). Accuracy feedback
counts detections at ``accuracy_score`` (0.5) on both frames.
|Acc_c - Acc_r| comes from the codec and the detector, so it carries no gradient (as in the
paper's formulation); it is reported, and it reaches the model through the proxy target.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from how2compress_ros.codec import DEFAULT_LEVEL_QPS, H264Decoder, H264EncoderConfig, MacroblockQPEncoder
from how2compress_ros.codec import levels_to_qp_map, mb_grid
from how2compress_ros.detectors.base import Box, Detector
from how2compress_ros.detectors.metrics import match, score_frames
from how2compress_ros.emphasis.model import EmphasisModel, batchnorm_layers, images_to_tensor
from offload_common.training_state import save_training_state, load_training_state
from how2compress_ros.emphasis.proxy import (dilate_mask, dual_exploration, macroblock_ssim,
                                             proxy_emphasis_thresholds, raise_missed_objects, roi_mask)


@dataclass
class RERConfig:
    epochs: int = 6
    batch_size: int = 4
    lr: float = 1e-3
    lr_min: float = 1e-6
    weight_decay: float = 0.01
    p_start: float = 0.8
    p_decay: float = 0.1
    roi_percentile: float = 90.0
    bg_percentile: float = 50.0
    lambda_acc: float = 10.0
    lambda_align: float = 5.0
    penalty: Sequence[float] = (1.0, 1.3, 1.6, 1.9, 2.2)
    level_qps: Sequence[int] = DEFAULT_LEVEL_QPS
    preset: str = "veryfast"
    seed: int = 0
    roi_score: float = 0.3        # pseudo-RoI: detections at or above this score
    roi_dilate: int = 1           # ... grown by this many macroblocks
    accuracy_score: float = 0.5   # detections counted for Acc_c / Acc_r
    balanced_ce: bool = True      # average RoI and background macroblocks separately
    freeze_batchnorm: bool = False  # keep BatchNorm statistics fixed (fine-tuning a pretrained model)


@dataclass
class TrainingFrame:
    rgb: np.ndarray
    reference: List[Box]
    roi: np.ndarray
    ssim: np.ndarray
    proxy: Optional[np.ndarray] = None


@dataclass
class EpochStats:
    epoch: int
    p: float
    loss: float
    align_loss: float
    acc_loss: float
    f1: float
    mean_level: float


def encode_decode(rgb: np.ndarray, levels: np.ndarray, level_qps: Sequence[int], preset: str = "veryfast"):
    """Encode one frame as an I-frame with an emphasis map; the decoded frame and its bytes."""
    h, w = rgb.shape[:2]
    with MacroblockQPEncoder(H264EncoderConfig(w, h, gop=1, preset=preset, base_qp=level_qps[0])) as enc:
        (unit,) = enc.encode(rgb, levels_to_qp_map(levels, level_qps))
    (frame,) = H264Decoder().decode(unit.data, True)
    return frame.rgb, len(unit.data)


def prepare_frames(frames: Sequence[np.ndarray], detector: Detector, level_qps: Sequence[int] = DEFAULT_LEVEL_QPS,
                   progress: bool = True, roi_score: float = 0.0, roi_dilate: int = 0,
                   accuracy_score: float = 0.0) -> List[TrainingFrame]:
    """Reference detections (score >= accuracy_score), pseudo-RoI (detections >= roi_score,
    dilated) and per-macroblock SSIM at the lowest quality. The detector's own threshold must
    not be above roi_score."""
    from tqdm import tqdm

    out = []
    for rgb in tqdm(frames, desc="profiling frames", disable=not progress):
        grid = mb_grid(rgb.shape[1], rgb.shape[0])
        lowest, _ = encode_decode(rgb, np.zeros(grid, np.int64), level_qps)
        boxes = detector.detect(rgb)
        roi = dilate_mask(roi_mask([b for b in boxes if b.score >= roi_score], grid), roi_dilate)
        ref = [b for b in boxes if b.score >= accuracy_score]
        out.append(TrainingFrame(rgb, ref, roi, macroblock_ssim(rgb, lowest)))
    return out


def group_by_size(images: Sequence[np.ndarray]) -> Dict[tuple, List[int]]:
    """Indices of the images of each shape (frames of several videos may differ in size, and a
    batch only holds frames of one size)."""
    groups: Dict[tuple, List[int]] = {}
    for i, img in enumerate(images):
        groups.setdefault(img.shape, []).append(i)
    return groups


def same_size_batches(groups: Dict[tuple, List[int]], bs: int, rng: np.random.Generator) -> List[List[int]]:
    """Shuffled batches of same-size frames, in shuffled order (one size: exactly the
    single-video order of earlier versions, so their commands still reproduce)."""
    batches = []
    for group in groups.values():
        order = [group[i] for i in rng.permutation(len(group))]
        batches += [order[i:i + bs] for i in range(0, len(order), bs)]
    if len(groups) == 1:
        return batches
    return [batches[i] for i in rng.permutation(len(batches))]


def region_balanced_mean(values: torch.Tensor, roi: torch.Tensor) -> torch.Tensor:
    """Mean of per-macroblock ``values`` with RoI and background averaged separately (RoI is
    ~5 % of a frame: a plain mean barely sees it)."""
    parts = [values[m].mean() for m in (roi, ~roi) if m.any()]
    return sum(parts) / len(parts)


class RERTrainer:
    def __init__(self, model: EmphasisModel, detector: Detector, frames: List[TrainingFrame],
                 config: RERConfig):
        if not frames:
            raise ValueError("no training frames")
        self.size_groups = group_by_size([f.rgb for f in frames])
        self.model, self.detector, self.frames, self.cfg = model, detector, frames, config
        self.levels = model.config.levels
        if len(config.level_qps) != self.levels or len(config.penalty) != self.levels:
            raise ValueError("level_qps and penalty need one entry per emphasis level")
        self.tau_roi, self.tau_bg = proxy_emphasis_thresholds([f.ssim for f in frames], config.roi_percentile,
                                                              config.bg_percentile)
        torch.manual_seed(config.seed)
        self.rng = np.random.default_rng(config.seed)
        self.opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        steps = config.epochs * sum((len(g) + config.batch_size - 1) // config.batch_size
                                    for g in self.size_groups.values())
        self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.opt, T_max=max(steps, 1), eta_min=config.lr_min)
        self.penalty = torch.tensor(list(config.penalty), dtype=torch.float32)
        self.epoch = 0
        self.history: List[EpochStats] = []

    # -- one iteration -------------------------------------------------------------------------
    def _step(self, idx: Sequence[int], p: float):
        batch = images_to_tensor([self.frames[i].rgb for i in idx])
        logits = self.model(batch)
        em = logits.argmax(1).detach().numpy()
        targets, accs, levels = [], [], []
        for k, i in enumerate(idx):
            fr = self.frames[i]
            if fr.proxy is None:
                fr.proxy = em[k].copy()
            proxy = dual_exploration(em[k], fr.proxy, fr.roi, fr.ssim, self.tau_roi, self.tau_bg, p,
                                     self.levels, self.rng)
            decoded, _ = encode_decode(fr.rgb, em[k], self.cfg.level_qps, self.cfg.preset)
            found = [b for b in self.detector.detect(decoded) if b.score >= self.cfg.accuracy_score]
            accs.append(score_frames([found], [fr.reference]).f1)
            hit = match(fr.reference, found) if found else np.zeros(len(fr.reference), bool)
            proxy = raise_missed_objects(proxy, [b for b, h in zip(fr.reference, hit) if not h], self.levels)
            fr.proxy = proxy
            targets.append(proxy)
            levels.append(em[k].mean())
        target = torch.from_numpy(np.stack(targets)).long()
        ce = F.cross_entropy(logits, target, reduction="none")                # (B, rows, cols)
        weighted = ce * self.penalty[torch.from_numpy(em).long()]
        if self.cfg.balanced_ce:
            roi = torch.from_numpy(np.stack([self.frames[i].roi for i in idx]))
            align = region_balanced_mean(weighted, roi)
        else:
            align = weighted.mean()
        acc_loss = float(np.mean([abs(a - 1.0) for a in accs]))
        loss = self.cfg.lambda_acc * acc_loss + self.cfg.lambda_align * align
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        self.sched.step()
        return loss.item(), align.item(), acc_loss, float(np.mean(accs)), float(np.mean(levels))

    # -- epochs, checkpoints ---------------------------------------------------------------------
    def train(self, checkpoint_dir: Optional[str] = None, progress: bool = True,
              on_epoch: Optional[Callable[[EpochStats], None]] = None) -> List[EpochStats]:
        from tqdm import tqdm

        if checkpoint_dir and os.path.isfile(os.path.join(checkpoint_dir, "trainer_state.pt")):
            self.load_checkpoint(checkpoint_dir)
        bs = self.cfg.batch_size
        while self.epoch < self.cfg.epochs:
            p = max(0.0, self.cfg.p_start - self.cfg.p_decay * self.epoch)
            batches = self._batches(bs)
            sums = np.zeros(5)
            self.model.train()
            if self.cfg.freeze_batchnorm:
                # batches hold 4 frames of one video: their statistics differ from video to video,
                # and a model fine-tuned on them disagrees with itself at inference
                for m in batchnorm_layers(self.model):
                    m.eval()
            bar = tqdm(batches, desc=f"epoch {self.epoch + 1}/{self.cfg.epochs} p={p:.1f}", disable=not progress)
            for b in bar:
                vals = self._step(list(b), p)
                sums += np.array(vals) * len(b)
                bar.set_postfix(loss=f"{vals[0]:.3f}", f1=f"{vals[3]:.3f}", level=f"{vals[4]:.2f}")
            m = sums / len(self.frames)
            stats = EpochStats(self.epoch + 1, p, *(float(v) for v in m))
            self.history.append(stats)
            self.epoch += 1
            self.model.eval()
            if checkpoint_dir:
                self.save_checkpoint(checkpoint_dir)
            if on_epoch:
                on_epoch(stats)
        return self.history

    def _batches(self, bs: int) -> List[List[int]]:
        return same_size_batches(self.size_groups, bs, self.rng)

    def save_checkpoint(self, folder: str) -> None:
        save_training_state(
            os.path.join(folder, "trainer_state.pt"), modules={"model": self.model}, optimizer=self.opt,
            scheduler=self.sched, epoch=self.epoch, history=[asdict(h) for h in self.history],
            proxies=[torch.from_numpy(f.proxy.astype(np.int64)) if f.proxy is not None else torch.empty(0)
                     for f in self.frames],
            rng=json.dumps(self.rng.bit_generator.state))

    def load_checkpoint(self, folder: str) -> None:
        self.epoch, history, state = load_training_state(os.path.join(folder, "trainer_state.pt"),
                                                         modules={"model": self.model}, optimizer=self.opt,
                                                         scheduler=self.sched)
        self.history = [EpochStats(**h) for h in history]
        for f, t in zip(self.frames, state["proxies"]):
            f.proxy = t.numpy() if t.numel() else None
        self.rng.bit_generator.state = json.loads(state["rng"])
