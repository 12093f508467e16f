"""What every Hugging Face video classifier behind the split interface shares: the snapshot's
normalisation (``preprocessor_config.json`` mean / std, ImageNet's by default), resizing to the
model's image size, its labels, frames per clip and image size, and HF's own snapshot layout on
save. ``VideoMaeBackbone`` (videomae.py) and the [CLS]-token models (hf_video.py) build on it."""
from __future__ import annotations

import json
import os
from typing import Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

# eager attention: plain matmuls, which torch's FLOP counter sees and every transformers version has
ATTENTION = "eager"
TRAINING_NAME = "training.json"     # our training record, beside HF's config.json
# VideoMAEImageProcessor's defaults (ImageNet), used when the snapshot has no preprocessor file
DEFAULT_MEAN, DEFAULT_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def read_normalisation(folder: str) -> Tuple[Sequence[float], Sequence[float]]:
    """The snapshot's ``image_mean`` / ``image_std`` (its preprocessor file), else ImageNet's."""
    path = os.path.join(folder, "preprocessor_config.json")
    if not os.path.exists(path):
        return DEFAULT_MEAN, DEFAULT_STD
    with open(path) as f:
        raw = json.load(f)
    return raw.get("image_mean", DEFAULT_MEAN), raw.get("image_std", DEFAULT_STD)


class HfVideoBackbone(nn.Module):
    """A transformers ``*ForVideoClassification`` model with its input normalisation."""

    def __init__(self, model, mean: Sequence[float] = DEFAULT_MEAN, std: Sequence[float] = DEFAULT_STD):
        super().__init__()
        self.model = model
        self.config = model.config
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 1, 3, 1, 1), persistent=False)

    @property
    def labels(self):
        return [self.config.id2label[i] for i in range(self.config.num_labels)]

    @property
    def frames(self) -> int:
        return int(self.config.num_frames)

    @property
    def image_size(self) -> int:
        s = self.config.image_size
        return int(s[0] if isinstance(s, (list, tuple)) else s)

    def feature_channels(self, o: int) -> int:
        return int(self.config.hidden_size)

    def preprocess(self, clips_uint8: torch.Tensor) -> torch.Tensor:
        """(B, T, H, W, 3) uint8 -> (B, T, 3, S, S) normalised, resized to the model's image size."""
        x = clips_uint8.permute(0, 1, 4, 2, 3).float().div(255.0)
        b, t, c, h, w = x.shape
        s = self.image_size
        if (h, w) != (s, s):
            x = F.interpolate(x.reshape(b * t, c, h, w), size=(s, s), mode="bilinear",
                              align_corners=False).reshape(b, t, c, s, s)
        return (x - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.server(self.edge(x, 0), 0)

    def save_pretrained(self, folder: str, extra: dict = None) -> None:
        """HF's own snapshot layout (config.json + model.safetensors) plus our training record."""
        self.model.save_pretrained(folder, safe_serialization=True)
        if extra:
            with open(os.path.join(folder, TRAINING_NAME), "w") as f:
                json.dump(extra, f, indent=1)


__all__ = ["ATTENTION", "DEFAULT_MEAN", "DEFAULT_STD", "HfVideoBackbone", "TRAINING_NAME", "read_normalisation"]
