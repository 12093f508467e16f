"""Teaching a backbone with a trained one: logit distillation plus feature hints.

A ViT trained from scratch on a few thousand synthetic clips sits at chance for hundreds of steps
(measured here: VideoMAE at lr 1e-3 for five epochs, at 3e-4 with and without logit
distillation for 150 steps). Dense per-token targets get it moving: the student's feature map
after layer ``l`` is regressed, through a linear adapter, onto the teacher's feature map after
block ``p`` (resampled to the student's grid and layer-normalised per position) — FitNets'
hints — while its logits follow the teacher's softened ones (Hinton et al.) and the labels:

    loss = (1 - alpha) * CE(y) + alpha * T^2 * KL(teacher_T || student_T) + beta * sum_hints MSE

Both models only need the split-able backbone interface (``preprocess``, ``edge``,
``run_blocks``, ``server``, ``feature_channels``, ``num_blocks``). The adapters are training
scaffolding and are not saved with the student.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class DistillationConfig:
    teacher: str = ""                                  # folder of a trained backbone
    hints: Sequence[Tuple[int, int]] = ((3, 4), (6, 6))  # (student layer, teacher block)
    alpha: float = 0.5                                 # weight of the distillation term vs CE
    temperature: float = 2.0
    hint_weight: float = 1.0


def parse_hints(text: str) -> List[Tuple[int, int]]:
    """'3:4,6:6' -> [(3, 4), (6, 6)]."""
    pairs = []
    for item in filter(None, (t.strip() for t in text.split(","))):
        s, _, t = item.partition(":")
        if not t:
            raise ValueError(f"hint {item!r}: expected student_layer:teacher_block")
        pairs.append((int(s), int(t)))
    return pairs


def resample(features: torch.Tensor, grid: Sequence[int]) -> torch.Tensor:
    """(B, C, T, H, W) -> (B, C, *grid): average pooling where the map is larger, trilinear
    interpolation otherwise."""
    if tuple(features.shape[2:]) == tuple(grid):
        return features
    if all(a >= b for a, b in zip(features.shape[2:], grid)):
        return F.adaptive_avg_pool3d(features, tuple(grid))
    return F.interpolate(features, size=tuple(grid), mode="trilinear", align_corners=False)


class Distiller(nn.Module):
    """Holds the frozen teacher and the hint adapters; ``loss(student, clips, labels)`` returns
    (loss, logits, parts)."""

    def __init__(self, student, teacher, config: DistillationConfig):
        super().__init__()
        self.cfg = config
        self.hints = sorted(config.hints)
        for s, t in self.hints:
            if not 0 < s <= student.num_blocks or not 0 <= t <= teacher.num_blocks:
                raise ValueError(f"hint {s}:{t} out of range (student has {student.num_blocks} layers, "
                                 f"teacher {teacher.num_blocks} blocks)")
        self.teacher = teacher.eval().requires_grad_(False)
        self.adapters = nn.ModuleList(
            nn.Conv3d(student.feature_channels(s), teacher.feature_channels(t), 1) for s, t in self.hints)

    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()             # the teacher's batch norms stay frozen
        return self

    def trainable_parameters(self):
        return self.adapters.parameters()

    def loss(self, student, clips_uint8: torch.Tensor, labels: torch.Tensor):
        cfg = self.cfg
        with torch.no_grad():                   # one pass through the teacher, keeping the hinted maps
            h = self.teacher.edge(self.teacher.preprocess(clips_uint8), 0)
            at, maps = 0, {}
            for t in sorted({t for _, t in self.hints}):
                h = maps[t] = self.teacher.run_blocks(h, at, t)
                at = t
            teacher_logits = self.teacher.server(h, at)
        h, at, hint = student.edge(student.preprocess(clips_uint8), 0), 0, torch.zeros(())
        for adapter, (s, t) in zip(self.adapters, self.hints):
            h = student.run_blocks(h, at, s)
            at = s
            pred = adapter(h)
            tgt = resample(maps[t], pred.shape[2:])
            tgt = F.layer_norm(tgt.movedim(1, -1), tgt.shape[1:2]).movedim(-1, 1)
            hint = hint + F.mse_loss(pred, tgt)
        logits = student.server(h, at)
        ce = F.cross_entropy(logits, labels, label_smoothing=0.05)
        temp = cfg.temperature
        kd = F.kl_div(F.log_softmax(logits / temp, 1), F.softmax(teacher_logits / temp, 1),
                      reduction="batchmean") * temp * temp
        loss = (1 - cfg.alpha) * ce + cfg.alpha * kd + cfg.hint_weight * hint
        return loss, logits, {"ce": ce.item(), "kd": kd.item(), "hint": hint.item()}
