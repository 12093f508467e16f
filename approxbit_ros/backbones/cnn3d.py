"""A compact 3D CNN for action recognition in the MoViNet / X3D style: a (1x3x3 + 3x1x1) stem,
then residual blocks of pointwise expansion -> depthwise 3x3x3 -> squeeze-excite -> pointwise
projection, global pooling and a linear head. Built from a small config; saved as
``config.json`` + ``model.safetensors``."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import List, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from offload_common.model_folder import load_model_folder, save_model_folder



@dataclass
class Cnn3dConfig:
    num_classes: int = 13
    stem_channels: int = 12
    # (out channels, expansion, temporal stride, spatial stride) per block
    blocks: List[Tuple[int, int, int, int]] = field(default_factory=lambda: [
        (16, 2, 1, 2), (16, 2, 1, 1), (32, 3, 2, 2), (32, 3, 1, 1), (64, 3, 2, 2), (64, 3, 1, 1)])
    dropout: float = 0.2

    def __post_init__(self):
        self.blocks = [tuple(b) for b in self.blocks]      # JSON gives lists


class SqueezeExcite(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.fc1 = nn.Conv3d(c, max(8, c // 4), 1)
        self.fc2 = nn.Conv3d(max(8, c // 4), c, 1)

    def forward(self, x):
        s = F.adaptive_avg_pool3d(x, 1)
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(s))))


class MobileBlock3d(nn.Module):
    def __init__(self, cin: int, cout: int, expand: int, st: int, ss: int):
        super().__init__()
        mid = cin * expand
        self.expand = nn.Sequential(nn.Conv3d(cin, mid, 1, bias=False), nn.BatchNorm3d(mid), nn.Hardswish())
        self.depthwise = nn.Sequential(nn.Conv3d(mid, mid, 3, stride=(st, ss, ss), padding=1, groups=mid, bias=False),
                                       nn.BatchNorm3d(mid), nn.Hardswish())
        self.se = SqueezeExcite(mid)
        self.project = nn.Sequential(nn.Conv3d(mid, cout, 1, bias=False), nn.BatchNorm3d(cout))
        self.skip = None
        if cin != cout or st != 1 or ss != 1:
            self.skip = nn.Sequential(nn.AvgPool3d((st, ss, ss), (st, ss, ss), ceil_mode=True),
                                      nn.Conv3d(cin, cout, 1, bias=False), nn.BatchNorm3d(cout))

    def forward(self, x):
        y = self.project(self.se(self.depthwise(self.expand(x))))
        return y + (x if self.skip is None else self.skip(x))


class Cnn3dBackbone(nn.Module):
    """``edge(x, o)``: stem + blocks[:o]; ``server(h, o)``: blocks[o:] + head (logits), which is
    ``classify_map(finish(h, o))``."""

    def __init__(self, config: Cnn3dConfig):
        super().__init__()
        self.config = config
        c = config.stem_channels
        self.stem = nn.Sequential(
            nn.Conv3d(3, c, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1), bias=False), nn.BatchNorm3d(c),
            nn.Hardswish(),
            nn.Conv3d(c, c, (3, 1, 1), padding=(1, 0, 0), groups=c, bias=False), nn.BatchNorm3d(c), nn.Hardswish())
        blocks, cin = [], c
        for cout, e, st, ss in config.blocks:
            blocks.append(MobileBlock3d(cin, cout, e, st, ss))
            cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(cin, config.num_classes))

    @property
    def num_blocks(self) -> int:
        return len(self.blocks)

    @staticmethod
    def preprocess(clips_uint8: torch.Tensor) -> torch.Tensor:
        """(B, T, H, W, 3) uint8 -> (B, 3, T, H, W) float, zero-centred."""
        return clips_uint8.permute(0, 4, 1, 2, 3).float().div(127.5).sub(1.0)

    def edge(self, x: torch.Tensor, o: int) -> torch.Tensor:
        return self.run_blocks(self.stem(x), 0, o)

    def run_blocks(self, h: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """Feature map after block ``start`` -> feature map after block ``stop``."""
        for blk in self.blocks[start:stop]:
            h = blk(h)
        return h

    def finish(self, h: torch.Tensor, o: int) -> torch.Tensor:
        """Blocks[o:]: the last feature map (B, C, T, H, W), before pooling."""
        return self.run_blocks(h, o, self.num_blocks)

    def classify_map(self, m: torch.Tensor) -> torch.Tensor:
        """Last feature map -> global average pooling -> head (logits)."""
        return self.head(m.mean(dim=(2, 3, 4)))

    def server(self, h: torch.Tensor, o: int) -> torch.Tensor:
        return self.classify_map(self.finish(h, o))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.server(self.edge(x, 0), 0)

    def feature_channels(self, o: int) -> int:
        return self.config.stem_channels if o == 0 else self.config.blocks[o - 1][0]

    def save_pretrained(self, folder: str, extra: dict = None) -> None:
        save_model_folder(folder, "cnn3d", asdict(self.config), self.state_dict(), extra)

    @classmethod
    def from_pretrained(cls, folder: str) -> "Cnn3dBackbone":
        return load_model_folder(folder, Cnn3dConfig, cls)
