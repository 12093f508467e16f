"""Baselines that send something other than ApproxBit codes, for the profiler / Table 1:
server-only (raw uint8 clip) and H.264 video offload (libx264 through PyAV, one clip = one GOP,
decoded with FFmpeg's decoder). DNN-Surgery (raw float32 features) and DeepCOD (float codes)
are configurations of the ``ConfigurationSet`` itself."""
from __future__ import annotations

import time
from fractions import Fraction
from dataclasses import dataclass
from typing import List, Tuple

import numpy as np


@dataclass
class H264Clip:
    packets: List[bytes]
    encode_ms: float

    @property
    def bytes(self) -> int:
        return sum(len(p) for p in self.packets)


def encode_clip_h264(frames: np.ndarray, qp: int, preset: str = "veryfast") -> H264Clip:
    """(T, H, W, 3) uint8 -> H.264 packets at constant QP (one IDR + P frames, no B-frames,
    zero-latency tuning: a packet per frame, as a live edge would send)."""
    import av

    t0 = time.perf_counter()
    h, w = frames.shape[1:3]
    ctx = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height, ctx.pix_fmt = w, h, "yuv420p"
    ctx.time_base = Fraction(1, 30)
    ctx.gop_size = len(frames)
    ctx.options = {"qp": str(qp), "preset": preset, "tune": "zerolatency", "bframes": "0"}
    packets = []
    for i, f in enumerate(frames):
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")
        vf.pts = i
        packets += [bytes(p) for p in ctx.encode(vf)]
    packets += [bytes(p) for p in ctx.encode(None)]
    return H264Clip(packets, 1000 * (time.perf_counter() - t0))


def decode_clip_h264(packets: List[bytes]) -> Tuple[np.ndarray, float]:
    """Packets -> (T, H, W, 3) uint8 frames, decode ms."""
    import av

    t0 = time.perf_counter()
    ctx = av.CodecContext.create("h264", "r")
    ctx.thread_count = 1              # tiny pictures: frame threads only add start-up latency
    frames = []
    for data in packets:
        for f in ctx.decode(av.Packet(data)):
            frames.append(f.to_ndarray(format="rgb24"))
    for f in ctx.decode(None):
        frames.append(f.to_ndarray(format="rgb24"))
    return np.stack(frames), 1000 * (time.perf_counter() - t0)
