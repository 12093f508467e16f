"""The VideoMAE transformer of Hugging Face transformers behind the split-able backbone interface.

``VideoMaeBackbone.from_pretrained(local_dir)`` loads any ``VideoMAEForVideoClassification``
snapshot folder (``config.json`` + ``model.safetensors``) — a public checkpoint such as an SSv2
fine-tuned one, or the small model our own ``approxbit_train_backbone --backbone videomae``
trains from scratch. Nothing is downloaded.

Offload point o = after o transformer layers. The token sequence (B, N, D) is carried as a
feature map (B, D, T', H', W') — the tubelet grid — so the same Conv3d codec works for both
backbones.
"""
from __future__ import annotations

import json
import os
from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

# eager attention: plain matmuls, which torch's FLOP counter sees and every transformers version has
ATTENTION = "eager"
TRAINING_NAME = "training.json"     # our training record, beside HF's config.json
# VideoMAEImageProcessor's defaults (ImageNet), used when the snapshot has no preprocessor file
DEFAULT_MEAN, DEFAULT_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def small_videomae_config(num_classes: int, labels: Optional[Sequence[str]] = None, frames: int = 16,
                          size: int = 64):
    """The compact VideoMAE we train from scratch on the synthetic clips: 8x8 patches, tubelets of
    4 frames (4x8x8 tokens: an object's motion is visible inside one token), 6 layers of width
    96, mean pooling. (16x16 patches of 2 frames stayed at chance for 4 epochs; this one too,
    until taught by the trained 3D CNN: see training/distillation.py.)"""
    from transformers import VideoMAEConfig

    labels = list(labels) if labels else [str(i) for i in range(num_classes)]
    return VideoMAEConfig(image_size=size, patch_size=8, num_channels=3, num_frames=frames, tubelet_size=4,
                          hidden_size=96, num_hidden_layers=6, num_attention_heads=3, intermediate_size=384,
                          hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, use_mean_pooling=True,
                          num_labels=num_classes, id2label=dict(enumerate(labels)),
                          label2id={n: i for i, n in enumerate(labels)})


class VideoMaeBackbone(nn.Module):
    """``edge(x, o)``: patch embedding + layers[:o] -> (B, D, T', H', W');
    ``server(h, o)``: layers[o:] + pooling + classifier (logits), which is ``classify_map(finish(h, o))``."""

    def __init__(self, model, mean: Sequence[float] = DEFAULT_MEAN, std: Sequence[float] = DEFAULT_STD):
        super().__init__()
        self.model = model                      # VideoMAEForVideoClassification
        cfg = model.config
        self.config = cfg
        self.grid = (cfg.num_frames // cfg.tubelet_size, cfg.image_size // cfg.patch_size,
                     cfg.image_size // cfg.patch_size)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 1, 3, 1, 1), persistent=False)

    @classmethod
    def from_config(cls, config) -> "VideoMaeBackbone":
        from transformers import VideoMAEForVideoClassification

        config._attn_implementation = ATTENTION
        return cls(VideoMAEForVideoClassification(config))

    @property
    def num_blocks(self) -> int:
        return self.config.num_hidden_layers

    @property
    def labels(self):
        return [self.config.id2label[i] for i in range(self.config.num_labels)]

    @property
    def frames(self) -> int:
        return int(self.config.num_frames)

    @property
    def image_size(self) -> int:
        return int(self.config.image_size)

    def feature_channels(self, o: int) -> int:
        return self.config.hidden_size

    def preprocess(self, clips_uint8: torch.Tensor) -> torch.Tensor:
        """(B, T, H, W, 3) uint8 -> (B, T, 3, S, S) normalised, resized to the model's image size."""
        x = clips_uint8.permute(0, 1, 4, 2, 3).float().div(255.0)
        b, t, c, h, w = x.shape
        s = self.config.image_size
        if (h, w) != (s, s):
            x = F.interpolate(x.reshape(b * t, c, h, w), size=(s, s), mode="bilinear",
                              align_corners=False).reshape(b, t, c, s, s)
        return (x - self.mean) / self.std

    def edge(self, x: torch.Tensor, o: int) -> torch.Tensor:
        h = self.model.videomae.embeddings(x, None)
        b, n, d = h.shape
        return self._tokens(h, 0, o).transpose(1, 2).reshape(b, d, *self.grid)

    def run_blocks(self, h: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """Feature map after layer ``start`` -> feature map after layer ``stop``."""
        return self._tokens(h.flatten(2).transpose(1, 2), start, stop).transpose(1, 2).reshape(h.shape)

    def _tokens(self, h: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        for layer in self.model.videomae.encoder.layer[start:stop]:
            h = _hidden(layer(h))
        return h

    def finish(self, h: torch.Tensor, o: int) -> torch.Tensor:
        """Layers[o:] (and the final layer norm, if the model has one): the last tokens as a
        feature map (B, D, T', H', W'), before pooling."""
        t = self._tokens(h.flatten(2).transpose(1, 2), o, self.num_blocks)
        if self.model.videomae.layernorm is not None:
            t = self.model.videomae.layernorm(t)
        return t.transpose(1, 2).reshape(h.shape)

    def classify_map(self, m: torch.Tensor) -> torch.Tensor:
        """Last feature map -> mean pooling and fc_norm (VideoMAE has no CLS token) -> classifier (logits)."""
        pooled = m.flatten(2).mean(2)
        return self.model.classifier(self.model.fc_norm(pooled) if self.model.fc_norm is not None else pooled)

    def server(self, h: torch.Tensor, o: int) -> torch.Tensor:
        return self.classify_map(self.finish(h, o))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.server(self.edge(x, 0), 0)

    def save_pretrained(self, folder: str, extra: dict = None) -> None:
        """HF's own snapshot layout (config.json + model.safetensors) plus our training record."""
        self.model.save_pretrained(folder, safe_serialization=True)
        if extra:
            with open(os.path.join(folder, TRAINING_NAME), "w") as f:
                json.dump(extra, f, indent=1)

    @classmethod
    def from_pretrained(cls, folder: str) -> "VideoMaeBackbone":
        """A local snapshot folder; its config is checked against its weights before anything is
        allocated (``check_model_size``)."""
        from transformers import VideoMAEConfig, VideoMAEForVideoClassification

        from offload_common.model_folder import WEIGHTS_NAME, check_model_size, stored_values

        config = VideoMAEConfig.from_pretrained(folder, local_files_only=True)
        weights, cfg_path = os.path.join(folder, WEIGHTS_NAME), os.path.join(folder, "config.json")
        h, i = int(config.hidden_size), int(config.intermediate_size)
        floor = int(config.num_hidden_layers) * (4 * h * h + 2 * h * i)    # attention + MLP weights alone
        if floor > stored_values(weights):   # before building even on the meta device (its sin table is slow)
            raise ValueError(f"{cfg_path} describes at least {floor:,} parameters but {weights} holds "
                             f"{stored_values(weights):,} values: config and weights do not belong together")
        check_model_size(lambda: VideoMAEForVideoClassification(config), weights, cfg_path)
        model = VideoMAEForVideoClassification.from_pretrained(folder, local_files_only=True,
                                                               attn_implementation=ATTENTION)
        mean, std = DEFAULT_MEAN, DEFAULT_STD
        proc = os.path.join(folder, "preprocessor_config.json")
        if os.path.exists(proc):
            with open(proc) as f:
                raw = json.load(f)
            mean, std = raw.get("image_mean", mean), raw.get("image_std", std)
        return cls(model, mean, std).eval()


def _hidden(out):
    """A layer's hidden states (older transformers return a tuple)."""
    return out[0] if isinstance(out, tuple) else out
