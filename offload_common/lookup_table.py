"""Profiling lookup tables: what each configuration of a task stream costs and how accurate it
is, written by the profilers (``approxbit_profile``, ``h2c_profile``) and read by the link
monitor. One JSON file per stream; plain Python, no ROS.

Latency of a configuration at bandwidth B (ApproxBit Eq. 1, plus the link's one-way delay):
    t = t_edge + t_enc + 8 * bytes / B + t_dec + t_server (+ delay)
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional

EDGE_ONLY = "edge_only"
VQA_METRIC = "vqa_accuracy"       # a table of answer accuracy: its results are VqaAnswer messages


@dataclass
class LutEntry:
    config_id: str
    method: str                    # approxbit | how2compress | edge_only | baseline
    accuracy: float                # top-1 (VAR) or F1 (detection), in [0, 1]
    bytes: float                   # payload bytes per result (0 for edge-only)
    edge_ms: float                 # edge model (edge part of the backbone / EA model)
    encode_ms: float = 0.0         # edge encoder
    decode_ms: float = 0.0         # server decoder
    server_ms: float = 0.0         # server model
    deployable: bool = True        # the nodes can run it (baselines that only the benchmark runs: False)
    extra: Dict[str, float] = field(default_factory=dict)   # e.g. top5, ssim

    @property
    def edge_part_ms(self) -> float:
        """Edge model + encoder."""
        return self.edge_ms + self.encode_ms

    @property
    def server_part_ms(self) -> float:
        """Server decoder + model."""
        return self.decode_ms + self.server_ms

    def link_ms(self, bandwidth_mbps: float, delay_ms: float = 0.0) -> float:
        """Eq. 1's 8 * bytes / B plus the one-way delay: 0 for edge-only, inf when B is unknown."""
        if self.config_id == EDGE_ONLY or self.bytes <= 0:
            return 0.0
        if bandwidth_mbps <= 0:
            return float("inf")
        return 8.0 * self.bytes / (bandwidth_mbps * 1000.0) + delay_ms

    def latency_ms(self, bandwidth_mbps: float, delay_ms: float = 0.0, edge_scale: float = 1.0,
                   server_scale: float = 1.0) -> float:
        """Eq. 1. ``edge_scale`` / ``server_scale`` rescale times measured on another machine."""
        return (edge_scale * self.edge_part_ms + server_scale * self.server_part_ms
                + self.link_ms(bandwidth_mbps, delay_ms))


@dataclass
class LookupTable:
    stream_id: str                 # "var" (ApproxBit action recognition), "det" (How2Compress)
    task: str
    metric: str                    # what accuracy means: "top1", "f1", "vqa_accuracy"
    entries: List[LutEntry]
    meta: Dict[str, object] = field(default_factory=dict)   # device, command, date, clips...

    def get(self, config_id: str) -> Optional[LutEntry]:
        return next((e for e in self.entries if e.config_id == config_id), None)

    def save(self, path: str) -> None:
        with open(path, "w") as f:
            json.dump(asdict(self), f, indent=1)

    @classmethod
    def load(cls, path: str) -> "LookupTable":
        with open(path) as f:
            raw = json.load(f)
        try:
            entries = [LutEntry(**e) for e in raw["entries"]]
            return cls(raw["stream_id"], raw["task"], raw["metric"], entries, raw.get("meta", {}))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{path}: not a lookup table ({exc})") from None
