"""Training an importance-output EA model toward the detector's sensitivity (no encoding or
detection per step).

Target: each frame's positive sensitivity attribution (``emphasis/sensitivity.py``) as shares of
its total, optionally averaged over neighbouring frames (``temporal_mean``). Loss: KL(target ||
softmax of the model's scores over the frame's macroblocks), so the model learns where the
detector's sensitivity lies, not a hard level per macroblock (hard levels made earlier models'
maps nearly binary); levels come afterwards by cumulative share, exactly as the oracle's do.

With the detector's trunk frozen (the default) its features are computed once per frame and its
mirror image, and only the head trains: an epoch over 800 frames takes seconds on two cores.
``trunk_trainable`` fine-tunes the trunk as well (full forward passes over the same frames and
mirror images).
Epochs are chosen on the validation frames (lowest KL); per-epoch state is saved for resuming.
The levels' shares are then calibrated on the same frames (``calibrate_shares``), so that the
model's maps emphasise as many macroblocks as the sensitivity maps do.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from how2compress_ros.emphasis.model import EmphasisModel, images_to_tensor
from how2compress_ros.emphasis.training import group_by_size, same_size_batches


@dataclass
class ImportanceTrainConfig:
    epochs: int = 40
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 16
    seed: int = 0
    mirror: bool = True          # also train on each frame mirrored left-right


def share_targets(attributions: Sequence[np.ndarray], radius: int = 0, min_total: float = 0.0) -> List[np.ndarray]:
    """Each frame's positive attribution as shares of its total (all zero when the total is
    below ``min_total``), averaged over ``radius`` frames either side (``temporal_mean``)."""
    from how2compress_ros.emphasis.sensitivity import attribution_shares, temporal_mean

    if radius > 0:
        return [np.asarray(a, np.float32) for a in temporal_mean(attributions, radius, min_total)]
    return [attribution_shares(a, min_total).astype(np.float32) for a in attributions]


def importance_kl(scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over frames with a target of KL(target || softmax(scores over the frame)); scores
    (B, 1, rows, cols) or (B, rows, cols), target (B, rows, cols) summing to 1 or 0 per frame."""
    logp = F.log_softmax(scores.reshape(scores.shape[0], -1), dim=1)
    t = target.reshape(target.shape[0], -1)
    keep = t.sum(1) > 0
    if not keep.any():
        return scores.sum() * 0.0
    t = t[keep]
    kl = (t * (torch.log(t.clamp_min(1e-12)) - logp[keep])).sum(1)
    return kl.mean()


def captured_share(scores: np.ndarray, target: np.ndarray, share: float = 0.9) -> float:
    """How much of the target's sensitivity the model's top-k macroblocks hold, k being as many
    macroblocks as the target itself needs to hold ``share`` of it (the oracle map's size): 
    ``share`` for a perfect model, about k / N for a random one."""
    t = target.ravel()
    if t.sum() <= 0:
        return float("nan")
    k = int(np.searchsorted(np.cumsum(np.sort(t)[::-1]), share * t.sum()) + 1)
    top = np.argsort(-np.asarray(scores).ravel(), kind="stable")[:k]
    return float(t[top].sum() / t.sum())


def emphasised_fraction(p: np.ndarray, share: float) -> float:
    """Fraction of a frame's macroblocks among the fewest holding ``share`` of distribution ``p``
    (what ``levels_from_attribution`` puts at or above that share's level)."""
    q = np.sort(np.clip(np.asarray(p, np.float64).ravel(), 0, None))[::-1]
    total = q.sum()
    if total <= 0:
        return 0.0
    before = (np.cumsum(q) - q) / total
    return float(np.count_nonzero((before < share) & (q > 0)) / q.size)


def emphasis_limit(fractions: Sequence[float]) -> float:
    """The "do no harm" threshold (``EmphasisModelConfig.uniform_above``) from the fractions of
    macroblocks the model's maps emphasise (level >= 1) on the validation frames: the largest,
    rounded up to the next hundredth, so that no validation map reaches it; 1 (off) when that
    would be 1 or more, or when there are none. A map that emphasises more than every map that
    was validated is outside what the model was checked on, and the edge codes that frame
    uniformly rather than trust it (on this footage such maps come from people filling the frame)."""
    if len(fractions) == 0:
        return 1.0
    limit = float(np.floor(max(fractions) * 100 + 1e-9) + 1) / 100
    return limit if limit < 1.0 else 1.0


def calibrate_shares(predicted: Sequence[np.ndarray], targets: Sequence[np.ndarray],
                     shares: Sequence[float]) -> Tuple[Tuple[float, ...], List[float]]:
    """Shares for the model's maps that emphasise as many macroblocks, on average over the given
    (validation) frames, as the sensitivity targets' own maps do at ``shares``.

    A model's predicted distribution is smoother than the target (it cannot see which of two
    similar macroblocks the detector will need), so the fewest macroblocks holding 50 % of it
    are many more than the target's: on vtest's validation frames 57 % of macroblocks reached
    level 1 against the target's 26 %. ``predicted``: softmax maps; returns (shares, the
    targets' mean fraction per share)."""
    pairs = [(np.asarray(p), np.asarray(t)) for p, t in zip(predicted, targets) if np.asarray(t).sum() > 0]
    if not pairs:
        raise ValueError("no validation frames with a sensitivity target to calibrate on")
    out, fractions, low = [], [], 1e-4
    for share in shares:
        want = float(np.mean([emphasised_fraction(t, share) for _, t in pairs]))
        lo, hi = low, float(share)
        for _ in range(30):                           # the model's fraction grows with its share
            mid = (lo + hi) / 2
            if np.mean([emphasised_fraction(p, mid) for p, _ in pairs]) < want:
                lo = mid
            else:
                hi = mid
        chosen = max(float(np.ceil(hi * 1e4) / 1e4), low + 1e-4)     # rounded up: at least ``want``
        out.append(chosen)
        fractions.append(want)
        low = chosen
    return tuple(out), fractions


class ImportanceTrainer:
    """Trains ``model`` (``output="importance"``) on frames and their ``share_targets``, choosing
    the epoch by validation KL."""

    def __init__(self, model: EmphasisModel, frames: Sequence[np.ndarray], targets: Sequence[np.ndarray],
                 val_frames: Sequence[np.ndarray], val_targets: Sequence[np.ndarray], config: ImportanceTrainConfig):
        if model.config.output != "importance":
            raise ValueError("ImportanceTrainer trains importance-output models (output='importance')")
        if not frames or len(frames) != len(targets) or len(val_frames) != len(val_targets):
            raise ValueError("need as many targets as frames, and at least one training frame")
        self.model, self.cfg = model, config
        self.frozen = not model.config.trunk_trainable
        self.rng = np.random.default_rng(config.seed)
        torch.manual_seed(config.seed)
        self.train_set = self._examples(frames, targets, mirror=config.mirror)
        self.val_set = self._examples(val_frames, val_targets, mirror=False)
        params = [p for p in model.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
        self.groups = group_by_size([x[0] if self.frozen else x for x, _ in self.train_set])
        steps = config.epochs * sum(-(-len(g) // config.batch_size) for g in self.groups.values())
        self.sched = torch.optim.lr_scheduler.OneCycleLR(self.opt, max_lr=config.lr, total_steps=max(steps, 1))
        self.history: List[dict] = []
        self.best: Optional[Tuple[float, int, Dict[str, torch.Tensor]]] = None
        self.epoch = 0

    # -- data ----------------------------------------------------------------------------------
    @torch.no_grad()
    def _input(self, rgb: np.ndarray):
        """A frame as what trains: the trunk's (stride-8, stride-16) features when frozen, the
        frame otherwise; with its grid."""
        if not self.frozen:
            return rgb
        x, grid = self.model.prepare(images_to_tensor([rgb]))
        f8, f16 = self.model.trunk_features(x)
        return f8[0], f16[0], grid

    def _examples(self, frames, targets, mirror: bool):
        from tqdm import tqdm

        out = []
        self.model.eval()
        for rgb, target in tqdm(list(zip(frames, targets)), desc="trunk features" if self.frozen else "frames",
                                disable=not frames):
            views = [(rgb, target)]
            if mirror:
                views.append((np.ascontiguousarray(rgb[:, ::-1]), np.ascontiguousarray(target[:, ::-1])))
            for img, t in views:
                out.append((self._input(img), torch.from_numpy(np.asarray(t, np.float32))))
        return out

    def _scores(self, items) -> torch.Tensor:
        if self.frozen:
            f8 = torch.stack([x[0] for x in items])
            f16 = torch.stack([x[1] for x in items])
            return self.model.to_grid(self.model.head(f8, f16), items[0][2])
        return self.model(images_to_tensor(list(items)))     # mirrored views are examples of their own

    # -- training ------------------------------------------------------------------------------
    def evaluate(self) -> dict:
        """Validation KL and captured share (the model in eval mode)."""
        self.model.eval()
        kls, caps = [], []
        with torch.no_grad():
            for x, t in self.val_set:
                s = self._scores([x])
                kls.append(importance_kl(s, t[None]).item() if t.sum() > 0 else np.nan)
                caps.append(captured_share(s[0, 0].numpy(), t.numpy()))
        return {"val_kl": float(np.nanmean(kls)) if kls else float("nan"),
                "val_captured_90": float(np.nanmean(caps)) if caps else float("nan")}

    @torch.no_grad()
    def validation_maps(self) -> Tuple[List[np.ndarray], List[np.ndarray]]:
        """(the model's softmax map, the target) per validation frame."""
        self.model.eval()
        maps = []
        for x, _ in self.val_set:
            s = self._scores([x])[0, 0].double()
            maps.append(torch.softmax(s.ravel(), 0).reshape(s.shape).numpy())
        return maps, [t.numpy() for _, t in self.val_set]

    def train(self, checkpoint_dir: Optional[str] = None, progress: bool = True, log=None) -> List[dict]:
        from tqdm import tqdm

        if checkpoint_dir:
            self._resume(checkpoint_dir)
        while self.epoch < self.cfg.epochs:
            self.model.train()
            if self.frozen:
                self.model.backbone.eval()
            losses = []
            batches = same_size_batches(self.groups, self.cfg.batch_size, self.rng)
            bar = tqdm(batches, desc=f"epoch {self.epoch + 1}/{self.cfg.epochs}", disable=not progress, leave=False)
            for b in bar:
                items = [self.train_set[i] for i in b]
                loss = importance_kl(self._scores([x for x, _ in items]), torch.stack([t for _, t in items]))
                self.opt.zero_grad()
                loss.backward()
                self.opt.step()
                self.sched.step()
                losses.append(loss.item())
                bar.set_postfix(kl=f"{loss.item():.3f}")
            self.epoch += 1
            stats = {"epoch": self.epoch, "train_kl": float(np.mean(losses)), **self.evaluate()}
            self.history.append(stats)
            if self.best is None or stats["val_kl"] < self.best[0] or not np.isfinite(self.best[0]):
                self.best = (stats["val_kl"], self.epoch, {k: v.detach().clone() for k, v in self.model.state_dict().items()})
            if log:
                log(stats)
            if checkpoint_dir:
                self._save(checkpoint_dir)
        if self.best is not None:
            self.model.load_state_dict(self.best[2])
        self.model.eval()
        return self.history

    @property
    def best_epoch(self) -> int:
        return self.best[1] if self.best else 0

    def _save(self, folder: str) -> None:
        os.makedirs(folder, exist_ok=True)
        torch.save({"model": self.model.state_dict(), "opt": self.opt.state_dict(), "sched": self.sched.state_dict(),
                    "epoch": self.epoch, "best": self.best, "rng": self.rng.bit_generator.state,
                    "config": asdict(self.cfg)}, os.path.join(folder, "importance_state.pt"))
        with open(os.path.join(folder, "importance_history.json"), "w") as f:
            json.dump(self.history, f)

    def _resume(self, folder: str) -> None:
        path = os.path.join(folder, "importance_state.pt")
        if not os.path.isfile(path):
            return
        state = torch.load(path, weights_only=True)
        if state["config"] != asdict(self.cfg):
            raise ValueError(f"{path} was trained with other settings ({state['config']}); use another --checkpoint-dir")
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["opt"])
        self.sched.load_state_dict(state["sched"])
        self.epoch, self.best = state["epoch"], state["best"]
        self.rng.bit_generator.state = state["rng"]
        with open(os.path.join(folder, "importance_history.json")) as f:
            self.history = json.load(f)
        print(f"resumed from {path} at epoch {self.epoch}", flush=True)
