#!/usr/bin/env python3
"""Encoder cost of per-macroblock-QP H.264 on this machine: ms per frame by resolution and
preset, with and without a QP map, on the synthetic scene. Prints a table.

    tools/ros_env.sh python bench/bench_h264_encoder.py [--frames 60]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from how2compress_ros.codec import H264EncoderConfig, MacroblockQPEncoder, levels_to_qp_map, mb_grid
from offload_common.frame_sources import FrameStream, SyntheticSceneSource


def run(width, height, preset, with_map, frames):
    stream = FrameStream(SyntheticSceneSource(width, height, seed=1, num_frames=frames), loop=False)
    imgs = [f.rgb for f in iter(stream.next_frame, None)]
    rows, cols = mb_grid(width, height)
    rng = np.random.default_rng(0)
    qp = levels_to_qp_map(rng.integers(0, 5, size=(rows, cols))) if with_map else None
    total_bytes = 0
    with MacroblockQPEncoder(H264EncoderConfig(width, height, preset=preset, gop=30)) as enc:
        enc.encode(imgs[0], qp)   # warm-up
        t0 = time.perf_counter()
        for img in imgs:
            total_bytes += sum(len(u.data) for u in enc.encode(img, qp))
        dt = time.perf_counter() - t0
    return 1000 * dt / len(imgs), total_bytes * 8 * 30 / len(imgs) / 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=60)
    args = ap.parse_args()
    print(f"{'size':>10} {'preset':>10} {'QP map':>7} {'ms/frame':>9} {'fps':>7} {'Mbit/s@30':>10}")
    for w, h in ((640, 360), (1280, 720)):
        for preset in ("ultrafast", "veryfast"):
            for with_map in (False, True):
                ms, mbps = run(w, h, preset, with_map, args.frames)
                print(f"{w}x{h:<5} {preset:>10} {'yes' if with_map else 'no':>7} {ms:9.2f} {1000 / ms:7.1f} {mbps:10.2f}")


if __name__ == "__main__":
    main()
