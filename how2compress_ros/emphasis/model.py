"""Emphasis-Assignment (EA) model: MobileViTv2 backbone + one 1x1 conv head giving logits over
emphasis levels for every 16x16 macroblock (How2Compress §5.1, appendix A).

The backbone is Hugging Face transformers' MobileViTV2 (the same Apple MobileViTv2 that timm
has; timm >= 1.0 imports torchvision, which does not work with the CPU torch here). It runs up
to its stride-16 stage, so one feature vector falls on each macroblock of the (downsampled)
input. With input downsampling D > 1 the logits are upsampled bilinearly to the macroblock grid.

Saved as a folder with ``config.json`` + ``model.safetensors`` (``save_pretrained`` /
``from_pretrained``); backbone weights can come from a local HF snapshot folder.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import List, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from how2compress_ros.emphasis.resize import antialiased_downsample
from offload_common.model_folder import load_model_folder, save_model_folder

MB = 16


@dataclass
class EmphasisModelConfig:
    levels: int = 5                  # emphasis levels 0..levels-1
    width_multiplier: float = 0.5    # MobileViTv2 width (0.5 = 1.1 M parameters)
    downsample: int = 2              # input downsampling factor D in [1, 4]
    backbone_path: str = ""          # optional local HF MobileViTV2 snapshot to start from
    init: str = "kaiming"            # random init: "kaiming" (from scratch) or "hf" (transformers')

    def validate(self) -> None:
        if not 1 <= self.downsample <= 4:
            raise ValueError(f"downsample D must be in [1, 4], got {self.downsample}")
        if self.levels < 2:
            raise ValueError("need at least 2 emphasis levels")
        if self.init not in ("kaiming", "hf"):
            raise ValueError(f"init must be 'kaiming' or 'hf', got {self.init!r}")


def init_from_scratch(module: nn.Module) -> None:
    """Initialisation for training MobileViTv2 from scratch (as Apple's ml-cvnets does): He-normal
    convolutions (fan-out), unit-scale norm layers. transformers' own init is meant for fine-tuning:
    its BatchNorm weights are drawn around 0 with std 0.02, so every norm layer shrinks the signal
    50x and a randomly initialised model passes almost nothing from its input to its head."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)):
            if m.weight is not None:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def images_to_tensor(images: Sequence[np.ndarray]) -> torch.Tensor:
    """RGB uint8 frames of one size, (H, W, 3) each, as the model's (B, 3, H, W) input in [0, 1]."""
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255.0


def batchnorm_layers(module: nn.Module) -> List[nn.Module]:
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def _backbone(cfg: EmphasisModelConfig):
    from transformers import MobileViTV2Config, MobileViTV2Model

    if cfg.backbone_path:
        return MobileViTV2Model.from_pretrained(cfg.backbone_path, local_files_only=True)
    model = MobileViTV2Model(MobileViTV2Config(width_multiplier=cfg.width_multiplier))
    if cfg.init == "kaiming":
        init_from_scratch(model)
    return model


class EmphasisModel(nn.Module):
    STAGES = 4   # conv stem + 4 stages = stride 16
    exportable = False   # True while exported to ONNX (emphasis/onnx_model.py): downsampling without aten AA ops

    def __init__(self, config: EmphasisModelConfig):
        super().__init__()
        config.validate()
        self.config = config
        self.backbone = _backbone(config)
        self.backbone.eval()      # probing the width must not touch BatchNorm's running stats
        with torch.no_grad():
            c = self._features(torch.zeros(1, 3, 64, 64)).shape[1]
        self.backbone.train()
        self.head = nn.Conv2d(c, config.levels, kernel_size=1)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        h = self.backbone.conv_stem(x)
        for layer in self.backbone.encoder.layer[: self.STAGES]:
            h = layer(h)
        return h

    def forward(self, images: torch.Tensor, grid: Optional[tuple] = None) -> torch.Tensor:
        """images: (B, 3, H, W) floats in [0, 1]. Returns logits (B, levels, rows, cols) on the
        macroblock grid of the full-resolution frame (``grid`` or ceil(H/16) x ceil(W/16))."""
        b, _, h, w = images.shape
        rows, cols = grid or ((h + MB - 1) // MB, (w + MB - 1) // MB)
        d = self.config.downsample
        # pad to whole macroblocks at the downsampled scale, then downsample
        ph, pw = rows * MB - h, cols * MB - w
        x = F.pad(images, (0, pw, 0, ph), mode="replicate") if (ph or pw) else images
        if d > 1 and self.exportable:            # the same filter as ONNX-exportable convolutions
            x = antialiased_downsample(x, d)
        elif d > 1:
            x = F.interpolate(x, scale_factor=1.0 / d, mode="bilinear", align_corners=False,
                              antialias=True)
        x = F.pad(x, (0, (-x.shape[3]) % MB, 0, (-x.shape[2]) % MB), mode="replicate")
        # MobileViTv2 checkpoints take BGR in [0, 1] (HF's image processor flips channels)
        logits = self.head(self._features(x.flip(1)))
        if logits.shape[2:] != (rows, cols):
            logits = F.interpolate(logits, size=(rows, cols), mode="bilinear", align_corners=False)
        return logits

    @torch.no_grad()
    def predict_levels(self, rgb: np.ndarray) -> np.ndarray:
        """Emphasis level per macroblock, (rows, cols) uint8, for one RGB uint8 frame (the model
        runs on the device its weights are on)."""
        x = images_to_tensor([np.asarray(rgb, dtype=np.uint8)]).to(self.head.weight.device)
        return self.forward(x).argmax(dim=1)[0].to(torch.uint8).cpu().numpy()

    # -- persistence ---------------------------------------------------------------------------
    def save_pretrained(self, folder: str, extra: Optional[dict] = None) -> None:
        cfg = asdict(self.config)
        cfg["backbone_path"] = ""   # the weights file holds the backbone too
        save_model_folder(folder, "emphasis_assignment", cfg, self.state_dict(), extra)

    @classmethod
    def from_pretrained(cls, folder: str) -> "EmphasisModel":
        return load_model_folder(folder, EmphasisModelConfig, cls)
