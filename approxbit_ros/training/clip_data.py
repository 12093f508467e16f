"""Where codec training gets its clips, and how a configuration is scored on them.

- ``SyntheticClipData``: the synthetic action clips (fresh clips every epoch, labels); scored by
  top-1 / top-5 accuracy.
- ``FootageClipData``: the user's recordings (``data/footage.py``), labelled or not; training
  clips are random windows of the train segments (zoomed, re-lit, and without labels also
  mirrored or reversed); scored by agreement with the uncompressed backbone on the same clip
  (top-1, teacher's top-1 within the top-5, on clips whose teacher class is not the footage's
  most frequent one), KL to the backbone, and accuracy where there are labels.
"""
from __future__ import annotations

from typing import Dict, Iterator, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from approxbit_ros.data.footage import UNLABELLED, FootageClips
from approxbit_ros.data.synthetic_actions import SyntheticActions, clip_batch, clip_batches


class SyntheticClipData:
    labelled = True
    metric = "top1"

    def __init__(self, epochs: int, clips_per_epoch: int, seed: int = 0):
        self.ds = SyntheticActions("train", epochs * clips_per_epoch)
        self.clips_per_epoch, self.seed = clips_per_epoch, seed

    def epoch_order(self, epoch: int) -> np.ndarray:
        return epoch * self.clips_per_epoch + np.random.default_rng([self.seed, epoch]).permutation(self.clips_per_epoch)

    def train_batch(self, indices: Sequence[int]) -> Tuple[np.ndarray, np.ndarray]:
        return clip_batch(self.ds, list(indices))

    def mean_batches(self, clips: int, batch_size: int) -> Iterator[np.ndarray]:
        for x, _ in clip_batches(self.ds, clips, batch_size):
            yield x

    def evaluate(self, predict, split: str, clips: int, batch_size: int = 32) -> dict:
        from approxbit_ros.training.backbone_training import split_accuracy

        return split_accuracy(predict, split, clips, batch_size)


class FootageClipData:

    def __init__(self, footage: FootageClips, backbone, clips_per_epoch: int, seed: int = 0, augment: bool = True,
                 batch_size: int = 32, synthetic_share: float = 0.0):
        self.footage, self.backbone = footage, backbone
        self.clips_per_epoch, self.seed, self.augment = clips_per_epoch, seed, augment
        self.synthetic_share = synthetic_share
        self._synthetic = SyntheticActions("train", 10 ** 7) if synthetic_share > 0 else None
        self.labelled = footage.labelled
        self.metric = "top1" if self.labelled else "agree_top1"      # chooses the epoch on validation
        if not footage.windows["train"]:
            raise ValueError(f"no training clips in the footage ({footage.summary()})")
        self.teacher = {s: teacher_logits(footage, backbone, s, batch_size) for s in ("train", "val", "test")}
        every = np.concatenate([self.teacher[s].argmax(1) for s in self.teacher if len(self.teacher[s])])
        self.majority = int(np.bincount(every).argmax())

    def epoch_order(self, epoch: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, epoch])
        return rng.integers(0, len(self.footage.windows["train"]), self.clips_per_epoch)

    def train_batch(self, indices: Sequence[int]) -> Tuple[np.ndarray, np.ndarray]:
        x, y = self.footage.batch("train", indices)
        rng = np.random.default_rng([self.seed, int(indices[0]), int(indices[-1]), len(indices)])
        if self.augment:               # mirrored or reversed, a clip may be another action: only without labels
            x = augment_clips(x, rng, flip=not self.labelled)
            if not self.labelled:
                back = rng.random(len(x)) < 0.5
                x[back] = x[back, ::-1]
        if self._synthetic is not None:   # generic video mixed in: unlabelled, the teacher is the target
            mix = np.flatnonzero(rng.random(len(x)) < self.synthetic_share)
            if len(mix):
                syn, _ = clip_batch(self._synthetic, rng.integers(0, len(self._synthetic), len(mix)).tolist())
                x[mix], y[mix] = syn[:, :x.shape[1]], UNLABELLED
        return np.ascontiguousarray(x), y

    def mean_batches(self, clips: int, batch_size: int) -> Iterator[np.ndarray]:
        n = min(clips, len(self.footage.windows["train"]))
        idx = np.random.default_rng([self.seed, 999]).permutation(len(self.footage.windows["train"]))[:n]
        for s in range(0, n, batch_size):
            yield self.footage.batch("train", idx[s:s + batch_size])[0]

    @torch.no_grad()
    def evaluate(self, predict, split: str, clips: Optional[int] = None, batch_size: int = 32) -> dict:
        return footage_agreement(predict, self.footage, split, self.teacher[split], self.majority, batch_size)


@torch.no_grad()
def teacher_logits(footage: FootageClips, backbone, split: str, batch_size: int = 32) -> np.ndarray:
    """The uncompressed backbone's logits for every clip of ``split``."""
    n = len(footage.windows[split])
    out = []
    for s in range(0, n, batch_size):
        x, _ = footage.batch(split, range(s, min(n, s + batch_size)))
        out.append(backbone(backbone.preprocess(torch.from_numpy(x))).float().numpy())
    return np.concatenate(out) if out else np.zeros((0, 1), np.float32)


def augment_clips(x: np.ndarray, rng: np.random.Generator, min_scale: float = 0.6, flip: bool = True) -> np.ndarray:
    """Random zoom (a square crop of ``min_scale``..1 of the side, resized back), horizontal flip
    (``flip``) and brightness / contrast, the same for every frame of a clip. The teacher sees the
    same augmented clip; labels do not follow a mirrored clip (moving left becomes moving right),
    so labelled footage is not flipped."""
    import cv2

    out = np.empty_like(x)
    b, t, h, w, _ = x.shape
    for i in range(b):
        side = int(round(h * rng.uniform(min_scale, 1.0)))
        y0, x0 = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        clip = x[i, :, y0:y0 + side, x0:x0 + side]
        if side != h:
            clip = np.stack([cv2.resize(np.ascontiguousarray(f), (w, h), interpolation=cv2.INTER_LINEAR) for f in clip])
        if flip and rng.random() < 0.5:
            clip = clip[:, :, ::-1]
        gain, bias = rng.uniform(0.75, 1.25), rng.uniform(-20, 20)
        out[i] = np.clip(clip.astype(np.float32) * gain + bias, 0, 255).astype(np.uint8)
    return out


@torch.no_grad()
def footage_agreement(predict, footage: FootageClips, split: str, teacher: np.ndarray, majority: int,
                      batch_size: int = 32) -> Dict[str, float]:
    """How ``predict`` (uint8 clips -> logits) agrees with the uncompressed backbone (``teacher``
    logits of the same clips)."""
    n = len(footage.windows[split])
    if n == 0:
        raise ValueError(f"no {split} clips in the footage")
    logits, labels = [], []
    for s in range(0, n, batch_size):
        x, y = footage.batch(split, range(s, min(n, s + batch_size)))
        logits.append(predict(x).float())
        labels.append(y)
    student = torch.cat(logits)
    t = torch.from_numpy(teacher)
    t1 = t.argmax(1)
    top5 = student.topk(min(5, student.shape[1]), dim=1).indices
    agree = top5[:, 0] == t1
    minority = t1 != majority
    kl = F.kl_div(F.log_softmax(student, 1), F.log_softmax(t, 1), log_target=True, reduction="batchmean")
    out = {"clips": n, "agree_top1": float(agree.float().mean()),
           "agree_top5": float((top5 == t1[:, None]).any(1).float().mean()),
           "minority_clips": int(minority.sum()),
           "agree_top1_minority": float(agree[minority].float().mean()) if minority.any() else float("nan"),
           "kl_to_backbone": float(kl)}
    y = torch.from_numpy(np.concatenate(labels))
    if (y != UNLABELLED).all():
        out["top1"] = float((top5[:, 0] == y).float().mean())
        out["top5"] = float((top5 == y[:, None]).any(1).float().mean())
    return out


def prediction_histogram(teacher: np.ndarray, labels: Sequence[str]) -> Tuple[Dict[str, float], float]:
    """Share of each predicted class (top-1) and the entropy of that distribution in bits."""
    p = np.bincount(teacher.argmax(1), minlength=len(labels)) / max(1, len(teacher))
    nz = p[p > 0]
    return {labels[i]: float(v) for i, v in enumerate(p) if v > 0}, float(-(nz * np.log2(nz)).sum())


__all__ = ["FootageClipData", "SyntheticClipData", "footage_agreement", "prediction_histogram", "teacher_logits"]
