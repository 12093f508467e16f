"""Emphasis-Assignment (EA) model: a backbone + a light head giving, for every 16x16 macroblock,
logits over emphasis levels (How2Compress §5.1, appendix A) or one importance score.

Two backbones (``EmphasisModelConfig.backbone``):
- ``mobilevitv2`` (below): trained from scratch here, with one 1x1 conv head over levels;
- ``ssdlite-mobilenetv2``: the detector's own pretrained MobileNetV2 trunk up to stride 16
  (``emphasis/ssdlite_trunk.py``), frozen or fine-tuned, with a two-scale head
  (``SsdliteHead``). It is trained toward the detector's sensitivity
  (``emphasis/sensitivity_training.py``) with ``output="importance"``: one score per macroblock,
  whose softmax over the frame predicts each macroblock's share of the sensitivity; levels then
  come by cumulative share (``levels_from_importance``), as the oracle maps' do.

``uniform_above`` is the "do no harm" rule: when at least that fraction of a frame's macroblocks
is emphasised (level > 0), the frame is coded uniformly at the top level, because emphasis
everywhere saves nothing and a mixed map costs P-frame bits.

The backbone is Hugging Face transformers' MobileViTV2 (the same Apple MobileViTv2 that timm
has; timm >= 1.0 imports torchvision, which does not work with the CPU torch here). It runs up
to its stride-16 stage, so one feature vector falls on each macroblock of the (downsampled)
input. With input downsampling D > 1 the logits are upsampled bilinearly to the macroblock grid.

Saved as a folder with ``config.json`` + ``model.safetensors`` (``save_pretrained`` /
``from_pretrained``); backbone weights can come from a local HF snapshot folder.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import List, Optional, Sequence, Tuple

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
    backbone: str = "mobilevitv2"    # or "ssdlite-mobilenetv2" (the detector's trunk)
    output: str = "levels"           # "levels" (logits, argmax) or "importance" (one score per MB)
    shares: Tuple[float, ...] = (0.5, 0.7, 0.85, 0.95)   # importance: cumulative shares of levels 4..1
    head_channels: int = 64          # ssdlite-mobilenetv2 head width
    trunk_trainable: bool = False    # ssdlite-mobilenetv2: fine-tune the trunk too
    uniform_above: float = 1.0       # emphasised fraction from which a frame is coded uniformly (1 = off)

    def __post_init__(self):
        self.shares = tuple(float(s) for s in self.shares)       # config.json holds a list

    def validate(self) -> None:
        if not 1 <= self.downsample <= 4:
            raise ValueError(f"downsample D must be in [1, 4], got {self.downsample}")
        if self.levels < 2:
            raise ValueError("need at least 2 emphasis levels")
        if self.init not in ("kaiming", "hf"):
            raise ValueError(f"init must be 'kaiming' or 'hf', got {self.init!r}")
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {', '.join(BACKBONES)}, got {self.backbone!r}")
        if self.output not in ("levels", "importance"):
            raise ValueError(f"output must be 'levels' or 'importance', got {self.output!r}")
        if self.output == "importance" and len(self.shares) != self.levels - 1:
            raise ValueError(f"importance output needs {self.levels - 1} shares for {self.levels} levels, "
                             f"got {len(self.shares)}")
        check_shares(self.shares)
        if not 0 < self.uniform_above <= 1:
            raise ValueError(f"uniform_above must be in (0, 1], got {self.uniform_above}")
        if not 1 <= self.head_channels <= 512:
            raise ValueError(f"head_channels must be in [1, 512], got {self.head_channels}")


BACKBONES = ("mobilevitv2", "ssdlite-mobilenetv2")


def check_shares(shares: Sequence[float], what: str = "shares") -> None:
    """ValueError unless ``shares`` (cumulative shares of levels top .. 1) increase within (0, 1]."""
    if any(not a < b <= 1 for a, b in zip((0.0, *shares), shares)):
        raise ValueError(f"{what} must increase within (0, 1], got {tuple(shares)}")


def parse_shares(text: str, what: str = "--shares") -> Tuple[float, ...]:
    """Comma-separated cumulative shares, checked (``check_shares``)."""
    shares = tuple(float(x) for x in text.split(",") if x.strip())
    if not shares:
        raise ValueError(f"{what}: no shares in {text!r}")
    check_shares(shares, what)
    return shares


def levels_from_importance(scores: np.ndarray, shares: Sequence[float]) -> np.ndarray:
    """Levels (len(shares) + 1 of them) from one importance score per macroblock: the scores'
    softmax over the frame is each macroblock's predicted share of the detector's sensitivity,
    and the fewest macroblocks holding ``shares[0]`` of it get the top level, and so on
    (``sensitivity.levels_from_attribution``)."""
    from how2compress_ros.emphasis.sensitivity import levels_from_attribution

    z = np.asarray(scores, np.float64)
    p = np.exp(z - z.max())
    return levels_from_attribution(p / p.sum(), shares).astype(np.uint8)


def do_no_harm(levels: np.ndarray, uniform_above: float, top: int) -> np.ndarray:
    """The whole frame at level ``top`` when at least ``uniform_above`` (< 1) of its macroblocks
    are emphasised (level > 0); the map unchanged otherwise (always with ``uniform_above`` 1)."""
    if uniform_above < 1.0 and np.mean(levels > 0) >= uniform_above:
        return np.full_like(levels, top)
    return levels


def output_to_levels(output: np.ndarray, config: "EmphasisModelConfig") -> np.ndarray:
    """One frame's model output, (levels, rows, cols) logits or (1, rows, cols) importance, as
    the level per macroblock (uint8), the "do no harm" rule applied."""
    if config.output == "importance":
        levels = levels_from_importance(output[0], config.shares)
    else:
        levels = np.asarray(output).argmax(axis=0).astype(np.uint8)
    return do_no_harm(levels, config.uniform_above, config.levels - 1)


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


class SsdliteHead(nn.Module):
    """Stride-16 features upsampled onto the stride-8 ones (one per macroblock at D = 2), mixed by
    a 3x3 convolution, then one output per level (or one importance score)."""

    def __init__(self, out_channels: int, width: int = 64):
        from how2compress_ros.emphasis.ssdlite_trunk import STRIDE8_CHANNELS, STRIDE16_CHANNELS

        super().__init__()
        self.lateral8 = nn.Conv2d(STRIDE8_CHANNELS, width, 1)
        self.lateral16 = nn.Conv2d(STRIDE16_CHANNELS, width, 1)
        self.mix = nn.Conv2d(width, width, 3, padding=1)
        self.out = nn.Conv2d(width, out_channels, 1)

    def forward(self, stride8: torch.Tensor, stride16: torch.Tensor) -> torch.Tensor:
        h = self.lateral8(stride8) + F.interpolate(self.lateral16(stride16), size=stride8.shape[2:], mode="nearest")
        return self.out(F.relu(self.mix(F.relu(h))))


class EmphasisModel(nn.Module):
    STAGES = 4   # conv stem + 4 stages = stride 16
    exportable = False   # True while exported to ONNX (emphasis/onnx_model.py): downsampling without aten AA ops

    def __init__(self, config: EmphasisModelConfig):
        super().__init__()
        config.validate()
        self.config = config
        out = 1 if config.output == "importance" else config.levels
        if config.backbone == "ssdlite-mobilenetv2":
            from how2compress_ros.emphasis.ssdlite_trunk import SsdliteTrunk

            self.backbone = SsdliteTrunk()          # weights: from_detector_graph or the saved folder
            self.backbone.requires_grad_(config.trunk_trainable)
            self.head = SsdliteHead(out, config.head_channels)
            return
        self.backbone = _backbone(config)
        self.backbone.eval()      # probing the width must not touch BatchNorm's running stats
        with torch.no_grad():
            c = self._features(torch.zeros(1, 3, 64, 64)).shape[1]
        self.backbone.train()
        self.head = nn.Conv2d(c, out, kernel_size=1)

    @classmethod
    def from_detector_graph(cls, config: EmphasisModelConfig, graph_path: Optional[str] = None) -> "EmphasisModel":
        """A new ``ssdlite-mobilenetv2`` model whose trunk holds the detector graph's weights."""
        from how2compress_ros.emphasis.ssdlite_trunk import SsdliteTrunk

        if config.backbone != "ssdlite-mobilenetv2":
            raise ValueError("from_detector_graph builds ssdlite-mobilenetv2 models only")
        model = cls(config)
        model.backbone.load_state_dict(SsdliteTrunk.from_graph(graph_path).state_dict())
        return model

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        h = self.backbone.conv_stem(x)
        for layer in self.backbone.encoder.layer[: self.STAGES]:
            h = layer(h)
        return h

    def head_output(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone + head on the padded, downsampled input (RGB in [0, 1])."""
        if self.config.backbone == "ssdlite-mobilenetv2":
            return self.head(*self.trunk_features(x))
        # MobileViTv2 checkpoints take BGR in [0, 1] (HF's image processor flips channels)
        return self.head(self._features(x.flip(1)))

    def trunk_features(self, x: torch.Tensor):
        """ssdlite-mobilenetv2: the trunk's (stride-8, stride-16) features of the prepared input
        (RGB in [0, 1], scaled to the detector's [-1, 1])."""
        return self.backbone(x * 2.0 - 1.0)

    def forward(self, images: torch.Tensor, grid: Optional[tuple] = None) -> torch.Tensor:
        """images: (B, 3, H, W) floats in [0, 1]. Returns logits (B, levels, rows, cols), or
        importance scores (B, 1, rows, cols), on the macroblock grid of the full-resolution frame
        (``grid`` or ceil(H/16) x ceil(W/16))."""
        x, grid = self.prepare(images, grid)
        return self.to_grid(self.head_output(x), grid)

    def prepare(self, images: torch.Tensor, grid: Optional[tuple] = None):
        """The backbone's input: frames padded to whole macroblocks, downsampled by D, padded to
        whole macroblocks again. Returns it with the macroblock grid (rows, cols)."""
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
        return x, (rows, cols)

    def to_grid(self, logits: torch.Tensor, grid: tuple) -> torch.Tensor:
        """The head's output on the macroblock grid."""
        rows, cols = grid
        if logits.shape[2:] != (rows, cols) and self.config.backbone == "ssdlite-mobilenetv2":
            # stride 8 of the frame downsampled by D: 2 / D cells per macroblock, padding cropped
            d2 = self.config.downsample
            logits = logits[:, :, : -(-rows * 2 // d2), : -(-cols * 2 // d2)]
        if logits.shape[2:] != (rows, cols):
            logits = F.interpolate(logits, size=(rows, cols), mode="bilinear", align_corners=False)
        return logits

    @torch.no_grad()
    def predict_levels(self, rgb: np.ndarray) -> np.ndarray:
        """Emphasis level per macroblock, (rows, cols) uint8, for one RGB uint8 frame (the model
        runs on the device its weights are on), the "do no harm" rule applied."""
        x = images_to_tensor([np.asarray(rgb, dtype=np.uint8)]).to(next(self.head.parameters()).device)
        return output_to_levels(self.forward(x)[0].float().cpu().numpy(), self.config)

    # -- persistence ---------------------------------------------------------------------------
    def save_pretrained(self, folder: str, extra: Optional[dict] = None) -> None:
        cfg = asdict(self.config)
        cfg["backbone_path"] = ""   # the weights file holds the backbone too
        cfg["shares"] = list(cfg["shares"])
        save_model_folder(folder, "emphasis_assignment", cfg, self.state_dict(), extra)

    @classmethod
    def from_pretrained(cls, folder: str) -> "EmphasisModel":
        return load_model_folder(folder, EmphasisModelConfig, cls)
