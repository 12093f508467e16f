"""The ApproxBit server half on ONNX Runtime: per configuration one session runs its decoder
(codes -> feature map; none for the float32 DNN-Surgery configurations), per offload point one
runs the rest of the backbone and its classifier (feature map -> last feature map, logits). The
same split as the torch path, so the result's decode / server times keep their meaning.
``ApproxBitServer(..., runtime=OnnxServerRuntime(configs))`` uses it; the VQA head reads the
last feature map it returns. No ROS."""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np
import torch
from torch import nn

from approxbit_ros.configurations import Configuration, ConfigurationSet
from offload_common.onnx_runtime import OnnxModule, OnnxSettings


class _Decode(nn.Module):
    def __init__(self, decoder, feature_shape):
        super().__init__()
        self.decoder, self.feature_shape = decoder, tuple(feature_shape)

    def forward(self, codes):
        return self.decoder(codes, self.feature_shape)


class _Finish(nn.Module):
    def __init__(self, backbone, o: int):
        super().__init__()
        self.backbone, self.o = backbone, o

    def forward(self, feats):
        final = self.backbone.finish(feats, self.o)
        return final, self.backbone.classify_map(final)


class OnnxServerRuntime:
    """Every configuration of ``configs`` (on the CPU, clip size set) as ONNX Runtime sessions."""

    def __init__(self, configs: ConfigurationSet, settings: Optional[OnnxSettings] = None):
        from approxbit_ros.backbones import blank_input
        from approxbit_ros.configurations import warm_up

        settings = settings or OnnxSettings()
        bb = configs.backbone
        if next(bb.parameters()).device.type != "cpu":
            raise ValueError("export from a configuration set on the CPU; ONNX Runtime's providers pick the GPU")
        shapes = warm_up(configs)
        self._decode: Dict[str, OnnxModule] = {}
        self._finish: Dict[int, OnnxModule] = {}
        name = f"approxbit-{configs.name}"
        with torch.no_grad():
            clip = blank_input(bb, configs.clip_frames, configs.clip_size, torch.device("cpu"))
            for c in configs.configurations.values():
                feature_shape = shapes[c.config_id].feature_shape
                o = c.offload_point
                if o not in self._finish:
                    feats = bb.edge(clip, o)
                    self._finish[o] = OnnxModule(_Finish(bb, o), feats, settings, f"{name}-finish-o{o}",
                                                 output_names=("final_map", "logits"))
                if c.kind != "float32":
                    codes = torch.zeros((1,) + tuple(shapes[c.config_id].code_shape))
                    self._decode[c.config_id] = OnnxModule(_Decode(c.decoder, feature_shape), codes, settings,
                                                           f"{name}-decode-{c.config_id.replace('/', '-')}")
        self.providers = next(iter(self._finish.values())).providers

    def decode(self, c: Configuration, codes: torch.Tensor) -> np.ndarray:
        x = np.ascontiguousarray(codes.float().cpu().numpy())
        return x if c.kind == "float32" else self._decode[c.config_id](x)[0]

    def finish(self, c: Configuration, feats: np.ndarray) -> Tuple[torch.Tensor, torch.Tensor]:
        final, logits = self._finish[c.offload_point](np.ascontiguousarray(feats, dtype=np.float32))
        return torch.from_numpy(final), torch.from_numpy(logits)
