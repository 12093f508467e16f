"""The emphasis (EA) model on ONNX Runtime: a uint8 RGB frame in, the emphasis level per 16x16
macroblock out, exactly ``EmphasisModel.predict_levels`` (pre-processing, padding, downsampling,
backbone, head, argmax all in the graph; an importance model's graph ends at its scores, and the
levels by cumulative share and the "do no harm" rule follow in NumPy, as in ``predict_levels``). One graph per frame size, exported the first time a
size is seen (cached on disk with ``OnnxSettings.cache_dir``). No ROS."""
from __future__ import annotations

import contextlib
from typing import Dict, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from offload_common.onnx_runtime import OnnxModule, OnnxSettings

OPSET = 17


def _unfolding(self, feature_map: torch.Tensor):
    """MobileViTV2Layer.unfolding for its non-overlapping patches, as reshapes (no Im2Col)."""
    b, c, h, w = feature_map.shape
    ph, pw = self.patch_height, self.patch_width
    # Im2Col drops the rows / columns a whole patch does not cover
    feature_map = feature_map[:, :, : h // ph * ph, : w // pw * pw]
    patches = feature_map.reshape(b, c, h // ph, ph, w // pw, pw).permute(0, 1, 3, 5, 2, 4)
    return patches.reshape(b, c, ph * pw, (h // ph) * (w // pw)), (h, w)


def _folding(self, patches: torch.Tensor, output_size):
    """MobileViTV2Layer.folding, the inverse of ``_unfolding`` (no Col2Im)."""
    b, c, _, _ = patches.shape
    h, w = output_size
    ph, pw = self.patch_height, self.patch_width
    x = patches.reshape(b, c, ph, pw, h // ph, w // pw).permute(0, 1, 4, 2, 5, 3)
    x = x.reshape(b, c, h // ph * ph, w // pw * pw)
    return F.pad(x, (0, w - w // pw * pw, 0, h - h // ph * ph))        # Col2Im leaves those zero


@contextlib.contextmanager
def exportable_mobilevit():
    """MobileViTv2's patch unfolding / folding as reshapes while a model is exported: the same
    values (they only move data), and no Im2Col / Col2Im, whose output size the exporter cannot
    take from a traced shape."""
    from transformers.models.mobilevitv2 import modeling_mobilevitv2 as mv

    saved = mv.MobileViTV2Layer.unfolding, mv.MobileViTV2Layer.folding
    mv.MobileViTV2Layer.unfolding, mv.MobileViTV2Layer.folding = _unfolding, _folding
    try:
        yield
    finally:
        mv.MobileViTV2Layer.unfolding, mv.MobileViTV2Layer.folding = saved


class _Levels(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model
        self.model.exportable = True            # instance attribute: the torch model itself is unchanged

    def forward(self, rgb):                      # (1, H, W, 3) uint8
        x = rgb.permute(0, 3, 1, 2).float() / 255.0
        return self.model(x).argmax(dim=1)[0].to(torch.uint8)


class _Importance(_Levels):
    def forward(self, rgb):                      # (1, H, W, 3) uint8 -> (1, rows, cols) scores
        return self.model(rgb.permute(0, 3, 1, 2).float() / 255.0)[0]


class OnnxEmphasisModel:
    """``predict_levels`` and ``config`` of an ``EmphasisModel`` (on the CPU), run by ONNX Runtime."""

    def __init__(self, model, settings: Optional[OnnxSettings] = None, name: str = "ea"):
        self.model, self.config = model.eval(), model.config
        self.settings, self.name = settings or OnnxSettings(), name
        self._sessions: Dict[Tuple[int, int], OnnxModule] = {}

    def session(self, height: int, width: int) -> OnnxModule:
        key = (height, width)
        if key not in self._sessions:
            example = torch.zeros(1, height, width, 3, dtype=torch.uint8)
            try:
                with exportable_mobilevit():
                    graph = _Importance(self.model) if self.config.output == "importance" else _Levels(self.model)
                    self._sessions[key] = OnnxModule(graph, example, self.settings,
                                                     f"{self.name}-{width}x{height}", opset=OPSET)
            finally:
                self.model.exportable = False
        return self._sessions[key]

    def predict_levels(self, rgb: np.ndarray) -> np.ndarray:
        from how2compress_ros.emphasis.model import do_no_harm, output_to_levels

        rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
        out = self.session(*rgb.shape[:2])(rgb[None])[0]
        if self.config.output == "importance":
            return output_to_levels(out, self.config)
        return do_no_harm(out, self.config.uniform_above, self.config.levels - 1)
