"""The ApproxBit edge half on ONNX Runtime: the same preloaded configurations, exported in
memory at start-up and run by whichever execution providers the edge has — ``CPUExecutionProvider``
here, ``CUDAExecutionProvider`` / ``TensorrtExecutionProvider`` with onnxruntime-gpu on a Jetson.

Per offload point one session runs pre-processing + the backbone up to that point; per
configuration one session runs its binary encoder (bits, or DeepCOD's float codes); one more
runs the whole backbone for edge_only. The float32 (DNN-Surgery) configurations send the
features as they are. No ROS; the torch path (``ApproxBitEdge`` without a runtime) is the
reference the tests compare against.
"""
from __future__ import annotations

import time
from typing import Dict, Optional, Sequence

import numpy as np
import torch
from torch import nn

from approxbit_ros.configurations import Configuration, ConfigurationSet
from offload_common.onnx_runtime import DEFAULT_PROVIDERS, OnnxModule, OnnxSettings, check_providers  # noqa: F401


class _BackboneEdge(nn.Module):
    """uint8 clip (1, T, H, W, 3) -> feature map at offload point ``o``."""

    def __init__(self, backbone, o: int):
        super().__init__()
        self.backbone, self.o = backbone, o

    def forward(self, clip):
        return self.backbone.edge(self.backbone.preprocess(clip), self.o)


class _BackboneFull(nn.Module):
    """uint8 clip -> the backbone's last feature map (edge_only; the classifier pools it, the VQA head reads it)."""

    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone

    def forward(self, clip):
        bb = self.backbone
        return bb.finish(bb.edge(bb.preprocess(clip), 0), 0)


class _Encode(nn.Module):
    """Feature map -> what the configuration transmits (uint8 bits or float codes)."""

    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, feats):
        return self.encoder.encode(feats)


class OnnxEdgeRuntime:
    """Every configuration of ``configs`` for clips of ``configs.clip_frames`` x
    ``configs.clip_size``², as ONNX Runtime sessions (exported from the torch modules on the CPU)."""

    def __init__(self, configs: ConfigurationSet, providers: Sequence[str] = DEFAULT_PROVIDERS, threads: int = 1,
                 settings: Optional[OnnxSettings] = None):
        settings = settings or OnnxSettings(tuple(providers), threads)
        self.providers = check_providers(settings.providers)

        def session(module, example, name):
            try:
                return OnnxModule(module, example, settings, f"approxbit-{configs.name}-{name}")
            except ValueError:
                raise
            except Exception as exc:
                raise RuntimeError(f"backbone {configs.name!r} does not export to ONNX: {exc}") from exc

        bb = configs.backbone
        if next(bb.parameters()).device.type != "cpu":
            raise ValueError("export from a configuration set on the CPU; ONNX Runtime's providers pick the GPU")
        clip = torch.zeros(1, configs.clip_frames, configs.clip_size, configs.clip_size, 3, dtype=torch.uint8)
        self._edge: Dict[int, object] = {}
        self._encode: Dict[str, object] = {}
        example_feats: Dict[int, torch.Tensor] = {}         # the encoders' example input, per offload point
        with torch.no_grad():
            for c in configs.configurations.values():
                o = c.offload_point
                if o not in self._edge:
                    self._edge[o] = session(_BackboneEdge(bb, o), clip, f"edge-o{o}")
                    example_feats[o] = bb.edge(bb.preprocess(clip), o)
                if c.encoder is not None:
                    self._encode[c.config_id] = session(_Encode(c.encoder), example_feats[o],
                                                        "encode-" + c.config_id.replace("/", "-"))
            self._full = session(_BackboneFull(bb), clip, "full")

    @staticmethod
    def _run(sess: OnnxModule, x: np.ndarray) -> np.ndarray:
        return sess(x)[0]

    # the methods of pipeline.TorchEdgeRuntime, which ApproxBitEdge calls
    def clock(self) -> float:
        return time.perf_counter()                        # sess.run returns when the work is done

    def prepare(self, frames: np.ndarray) -> np.ndarray:
        """(T, H, W, 3) uint8 frames -> the sessions' (1, T, H, W, 3) input."""
        return np.ascontiguousarray(frames, dtype=np.uint8)[None]

    def features(self, clip: np.ndarray, offload_point: int) -> np.ndarray:
        """(1, T, H, W, 3) uint8 -> (1, C, T', H', W') float32 feature map."""
        return self._run(self._edge[offload_point], clip)

    def transmitted(self, c: Configuration, feats: np.ndarray) -> np.ndarray:
        return (feats if c.encoder is None else self._run(self._encode[c.config_id], feats))[0]

    def final_map(self, clip: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(self._run(self._full, clip))
