"""Hugging Face video transformers with a [CLS] token — TimeSformer and ViViT — behind the
split-able backbone interface, loaded from a local snapshot folder (``config.json`` +
``model.safetensors``, and ``preprocessor_config.json`` when present: size, mean / std). Nothing
is downloaded. (VideoMAE, which pools its patch tokens instead, is ``videomae.py``.)

Offload point o = after o transformer layers. The patch tokens are carried as a feature map
(B, D, T', H', W') — the patch grid — so the same Conv3d codec serves every backbone. The [CLS]
token has no place on that grid: it travels as one extra leading time slice (B, D, 1 + T', H', W')
filled with the [CLS] vector, and the server reads it back as that slice's mean (exact without a
codec; with one, the decoder learns to reproduce a constant slice). The cost is 1 / T' more
elements than the patch tokens alone.

Token order inside the models (what ``_to_map`` / ``_to_tokens`` undo): TimeSformer
[CLS, (h, w, t)...], ViViT [CLS, (t, h, w)...].
"""
from __future__ import annotations

import os
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn

from approxbit_ros.backbones.hf_base import (ATTENTION, DEFAULT_MEAN, DEFAULT_STD, HfVideoBackbone,
                                             read_normalisation)


class ClsVideoTransformer(HfVideoBackbone):
    """Common split logic; subclasses name the model's parts and its token order."""

    model_type = ""
    token_order = "thw"           # order of the patch tokens after [CLS]
    grid: Tuple[int, int, int]

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @property
    def layers(self) -> nn.ModuleList:
        raise NotImplementedError

    def final_norm(self, t: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @property
    def num_blocks(self) -> int:
        return len(self.layers)

    def _to_map(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, 1 + N, D) -> (B, D, 1 + T', H', W'): [CLS] broadcast as the leading slice."""
        b, n, d = tokens.shape
        _, h, w = self.grid
        t = (n - 1) // (h * w)          # TimeSformer takes clips of other lengths (time embeddings interpolated)
        patches = tokens[:, 1:]
        if self.token_order == "hwt":
            patches = patches.reshape(b, h, w, t, d).permute(0, 4, 3, 1, 2)
        else:
            patches = patches.reshape(b, t, h, w, d).permute(0, 4, 1, 2, 3)
        cls = tokens[:, 0].reshape(b, d, 1, 1, 1).expand(b, d, 1, h, w)
        return torch.cat([cls, patches], 2)

    def _to_tokens(self, m: torch.Tensor) -> torch.Tensor:
        """(B, D, 1 + T', H', W') -> (B, 1 + N, D); [CLS] = the mean of the leading slice."""
        b, d = m.shape[:2]
        cls = m[:, :, 0].flatten(2).mean(2)
        patches = m[:, :, 1:]
        if self.token_order == "hwt":
            patches = patches.permute(0, 3, 4, 2, 1)
        else:
            patches = patches.permute(0, 2, 3, 4, 1)
        return torch.cat([cls[:, None], patches.reshape(b, -1, d)], 1)

    def _run(self, tokens: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        for layer in self.layers[start:stop]:
            out = layer(tokens)
            tokens = out[0] if isinstance(out, tuple) else out
        return tokens

    def edge(self, x: torch.Tensor, o: int) -> torch.Tensor:
        return self._to_map(self._run(self.embed(x), 0, o))

    def run_blocks(self, h: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        return self._to_map(self._run(self._to_tokens(h), start, stop))

    def finish(self, h: torch.Tensor, o: int) -> torch.Tensor:
        """Layers[o:] and the final layer norm, as a feature map (the VQA head reads it)."""
        return self._to_map(self.final_norm(self._run(self._to_tokens(h), o, self.num_blocks)))

    def classify_map(self, m: torch.Tensor) -> torch.Tensor:
        """Last feature map -> [CLS] -> classifier (logits)."""
        return self.model.classifier(m[:, :, 0].flatten(2).mean(2))

    def server(self, h: torch.Tensor, o: int) -> torch.Tensor:
        return self.classify_map(self.finish(h, o))

    @classmethod
    def from_config(cls, config) -> "ClsVideoTransformer":
        config._attn_implementation = ATTENTION
        return cls(cls.model_class()(config))

    @staticmethod
    def model_class():
        raise NotImplementedError

    @classmethod
    def from_pretrained(cls, folder: str) -> "ClsVideoTransformer":
        """A local snapshot folder; its config is checked against its weights before anything is
        allocated (``check_model_size``); ``preprocessor_config.json`` gives mean / std."""
        from offload_common.model_folder import WEIGHTS_NAME, check_model_size

        model_cls = cls.model_class()
        config = model_cls.config_class.from_pretrained(folder, local_files_only=True)
        check_model_size(lambda: model_cls(config), os.path.join(folder, WEIGHTS_NAME),
                         os.path.join(folder, "config.json"))
        model = model_cls.from_pretrained(folder, local_files_only=True, attn_implementation=ATTENTION)
        return cls(model, *read_normalisation(folder)).eval()


class TimesformerBackbone(ClsVideoTransformer):
    """``TimesformerForVideoClassification`` (divided space-time attention): 2D patches per frame,
    so the grid is (num_frames, S/p, S/p)."""

    model_type = "timesformer"
    token_order = "hwt"

    def __init__(self, model, mean=DEFAULT_MEAN, std=DEFAULT_STD):
        super().__init__(model, mean, std)
        n = self.image_size // int(self.config.patch_size)
        self.grid = (self.frames, n, n)

    @staticmethod
    def model_class():
        from transformers import TimesformerForVideoClassification

        return TimesformerForVideoClassification

    def embed(self, x):
        return self.model.timesformer.embeddings(x)

    @property
    def layers(self):
        return self.model.timesformer.encoder.layer

    def final_norm(self, t):
        norm = self.model.timesformer.layernorm
        return norm(t) if norm is not None else t


class VivitBackbone(ClsVideoTransformer):
    """``VivitForVideoClassification`` (tubelet embedding, joint space-time attention): the grid
    is (num_frames / tubelet_t, S / tubelet_h, S / tubelet_w)."""

    model_type = "vivit"
    token_order = "thw"

    def __init__(self, model, mean=DEFAULT_MEAN, std=DEFAULT_STD):
        super().__init__(model, mean, std)
        tt, th, tw = (int(v) for v in self.config.tubelet_size)
        self.grid = (self.frames // tt, self.image_size // th, self.image_size // tw)

    @staticmethod
    def model_class():
        from transformers import VivitForVideoClassification

        return VivitForVideoClassification

    def embed(self, x):
        return self.model.vivit.embeddings(x)

    @property
    def layers(self):
        vivit = self.model.vivit       # transformers 5 keeps the layers on the model, 4.x in an encoder
        return vivit.layers if hasattr(vivit, "layers") else vivit.encoder.layer

    def final_norm(self, t):
        return self.model.vivit.layernorm(t)


def small_timesformer_config(num_classes: int, labels: Optional[Sequence[str]] = None, frames: int = 8,
                             size: int = 64):
    """A compact TimeSformer of the size our VideoMAE has (6 layers of width 96, 8x8 patches)."""
    from transformers import TimesformerConfig

    labels = list(labels) if labels else [str(i) for i in range(num_classes)]
    return TimesformerConfig(image_size=size, patch_size=8, num_channels=3, num_frames=frames, hidden_size=96,
                             num_hidden_layers=6, num_attention_heads=3, intermediate_size=384,
                             hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, drop_path_rate=0,
                             num_labels=num_classes, id2label=dict(enumerate(labels)),
                             label2id={n: i for i, n in enumerate(labels)})


def small_vivit_config(num_classes: int, labels: Optional[Sequence[str]] = None, frames: int = 16, size: int = 64):
    """A compact ViViT: tubelets of 4x8x8 (the VideoMAE's token grid), 6 layers of width 96."""
    from transformers import VivitConfig

    labels = list(labels) if labels else [str(i) for i in range(num_classes)]
    return VivitConfig(image_size=size, num_frames=frames, tubelet_size=[4, 8, 8], num_channels=3, hidden_size=96,
                       num_hidden_layers=6, num_attention_heads=3, intermediate_size=384, hidden_dropout_prob=0.0,
                       attention_probs_dropout_prob=0.0, num_labels=num_classes, id2label=dict(enumerate(labels)),
                       label2id={n: i for i, n in enumerate(labels)})


__all__ = ["ClsVideoTransformer", "TimesformerBackbone", "VivitBackbone", "small_timesformer_config",
           "small_vivit_config"]
