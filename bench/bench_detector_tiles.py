#!/usr/bin/env python3
"""What tiled detection (``detectors/tiled.py``) costs and finds on the evaluation footage.

For each clip and tiling: detector ms/frame on this CPU, boxes per frame (score >= threshold),
confident boxes per frame (>= 0.6), their median height in pixels, and how many of the whole-frame
detector's confident boxes the tiled detector also finds (IoU >= 0.5). There is no ground truth
for these clips, so "finds more" is a count, not an accuracy.

    tools/ros_env.sh python bench/bench_detector_tiles.py --clips vtest-400,bikes --frames 40 --tiles 1x1,2x2,3x3
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from how2compress_ros.detectors.metrics import match
from how2compress_ros.detectors.ssdlite_person import SSDLitePersonDetector
from how2compress_ros.detectors.tiled import TiledDetector, parse_tiles
from how2compress_ros.evaluate_cli import EVAL_CLIPS, check_clip_names, load_clip


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", default=",".join(EVAL_CLIPS))
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--tiles", default="1x1,2x2,3x3")
    ap.add_argument("--threshold", type=float, default=0.4)
    ap.add_argument("--footage", default="data/footage")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    check_clip_names(args.clips.split(","))
    tilings = [parse_tiles(t) for t in args.tiles.split(",")]
    base = SSDLitePersonDetector(score_threshold=args.threshold)
    print(f"{'clip':>10} {'size':>9} {'tiles':>5} {'ms/frame':>9} {'boxes':>6} {'conf.':>6} {'median h':>8} "
          f"{'whole-frame conf. found':>23}")
    for name in args.clips.split(","):
        clip = load_clip(args.footage, name, args.frames)
        h, w = clip.frames[0].shape[:2]
        whole = None
        for rows, cols in tilings:
            det = TiledDetector(base, rows, cols)
            t0 = time.perf_counter()
            found = [det.detect(f) for f in clip.frames]
            ms = (time.perf_counter() - t0) / len(clip.frames) * 1e3
            confident = [[b for b in r if b.score >= 0.6] for r in found]
            if whole is None:
                whole = confident
            heights = [b.y_max - b.y_min for r in confident for b in r]
            kept = sum(int(match(r, c).sum()) for c, r in zip(whole, found))
            total = sum(map(len, whole))
            print(f"{name:>10} {w:>4}x{h:<4} {rows}x{cols:<3} {ms:9.1f} {np.mean([len(r) for r in found]):6.2f} "
                  f"{np.mean([len(c) for c in confident]):6.2f} {np.median(heights) if heights else 0:8.0f} "
                  f"{kept:>11}/{total:<11}", flush=True)


if __name__ == "__main__":
    main()
