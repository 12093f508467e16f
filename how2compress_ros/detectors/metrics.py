"""Detection accuracy against reference detections (the paper's protocol when no ground truth
exists: detections on the raw frames are the reference). F1 and AP at IoU 0.5."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Sequence, Tuple

import numpy as np

from how2compress_ros.detectors.base import Box


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU between every box of a (N, 4) and b (M, 4), xyxy."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda z: (z[:, 2] - z[:, 0]) * (z[:, 3] - z[:, 1])  # noqa: E731
    return inter / np.maximum(area(a)[:, None] + area(b)[None, :] - inter, 1e-9)


def match(pred: Sequence[Box], ref: Sequence[Box], iou: float = 0.5) -> np.ndarray:
    """Greedy matching, best-scoring prediction first: for each prediction, True if it matched
    an unmatched reference box with IoU >= iou."""
    order = np.argsort([-p.score for p in pred])
    ious = iou_matrix(np.array([p.as_array() for p in pred]).reshape(-1, 4),
                      np.array([r.as_array() for r in ref]).reshape(-1, 4))
    used = np.zeros(len(ref), bool)
    tp = np.zeros(len(pred), bool)
    for i in order:
        if len(ref) == 0:
            break
        cand = np.where(~used, ious[i], -1.0)
        j = int(np.argmax(cand))
        if cand[j] >= iou:
            used[j] = True
            tp[i] = True
    return tp


@dataclass
class DetectionScore:
    tp: int
    fp: int
    fn: int
    ap50: float
    per_frame: List[Tuple[int, int, int]] = field(default_factory=list)   # (tp, fp, fn) of each frame

    @property
    def precision(self) -> float:
        return self.tp / max(self.tp + self.fp, 1)

    @property
    def recall(self) -> float:
        return self.tp / max(self.tp + self.fn, 1)

    @property
    def f1(self) -> float:
        return float(f1_from_counts(self.tp, self.fp, self.fn))


def f1_from_counts(tp, fp, fn):
    """F1 of true-positive, false-positive and false-negative counts (numbers or arrays); 1.0
    where neither side has any box (nothing to find, nothing found)."""
    denom = 2 * np.asarray(tp, float) + fp + fn
    return np.where(denom > 0, 2 * np.asarray(tp, float) / np.maximum(denom, 1), 1.0)


def score_frames(preds: List[List[Box]], refs: List[List[Box]], iou: float = 0.5,
                 confident: float = 0.0) -> DetectionScore:
    """F1 counts and AP@iou (all-point interpolated) over a sequence of frames.

    ``confident`` > 0 adds a don't-care band for boxes scoring below it (detectors run with a
    lower threshold): a reference box below it need not be found (no FN), and a predicted box
    below it that matches nothing confident is not an FP, nor is any prediction that matches a
    don't-care reference box. Without it, boxes that hover at the score threshold flip between
    runs and even near-lossless video scores F1 ~0.97 against the raw frames."""
    if len(preds) != len(refs):
        raise ValueError(f"{len(preds)} predicted frames vs {len(refs)} reference frames")
    scored, per_frame = [], []
    n_ref = 0
    for p, r in zip(preds, refs):
        sure = [b for b in r if b.score >= confident]
        m = match(p, sure, iou)
        n_ref += len(sure)
        if confident > 0 and p:
            unsure = [b for b in r if b.score < confident]
            near = iou_matrix(np.array([b.as_array() for b in p]).reshape(-1, 4),
                              np.array([b.as_array() for b in unsure]).reshape(-1, 4))
            care = np.array([b.score >= confident for b in p]) & ~(near >= iou).any(axis=1)
        else:
            care = np.ones(len(p), bool)
        per_frame.append((int(m.sum()), int((~m & care).sum()), len(sure) - int(m.sum())))
        scored += [(box.score, bool(ok)) for box, ok, c in zip(p, m, care) if ok or c]
    tp, fp, fn = (sum(c[k] for c in per_frame) for k in range(3))
    return DetectionScore(tp, fp, fn, _average_precision(scored, n_ref), per_frame)


def _average_precision(scored, n_ref: int) -> float:
    if n_ref == 0:
        return 1.0 if not scored else 0.0
    if not scored:
        return 0.0
    scored.sort(key=lambda s: -s[0])
    hits = np.array([s[1] for s in scored], float)
    tp = np.cumsum(hits)
    precision = tp / np.arange(1, len(hits) + 1)
    recall = tp / n_ref
    mrec = np.concatenate([[0.0], recall, [recall[-1]]])
    mpre = np.concatenate([[1.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    idx = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1]))
