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

import os
from typing import Optional, Sequence

import torch

from approxbit_ros.backbones.hf_base import (ATTENTION, DEFAULT_MEAN, DEFAULT_STD,
                                             HfVideoBackbone, read_normalisation)


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


class VideoMaeBackbone(HfVideoBackbone):
    """``edge(x, o)``: patch embedding + layers[:o] -> (B, D, T', H', W');
    ``server(h, o)``: layers[o:] + pooling + classifier (logits), which is ``classify_map(finish(h, o))``."""

    def __init__(self, model, mean: Sequence[float] = DEFAULT_MEAN, std: Sequence[float] = DEFAULT_STD):
        super().__init__(model, mean, std)      # VideoMAEForVideoClassification
        cfg = model.config
        self.grid = (cfg.num_frames // cfg.tubelet_size, cfg.image_size // cfg.patch_size,
                     cfg.image_size // cfg.patch_size)

    @classmethod
    def from_config(cls, config) -> "VideoMaeBackbone":
        from transformers import VideoMAEForVideoClassification

        config._attn_implementation = ATTENTION
        return cls(VideoMAEForVideoClassification(config))

    @property
    def num_blocks(self) -> int:
        return self.config.num_hidden_layers

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
        return cls(model, *read_normalisation(folder)).eval()


def _hidden(out):
    """A layer's hidden states (older transformers return a tuple)."""
    return out[0] if isinstance(out, tuple) else out
