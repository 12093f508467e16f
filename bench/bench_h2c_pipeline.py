#!/usr/bin/env python3
"""How2Compress edge throughput on this CPU: EA model + per-macroblock-QP encoder, frames per
second at 640x360 and 1280x720 with the emphasis map recomputed every frame (reuse 1) or every
5th frame (reuse 5). Real footage (vtest.avi, resized); prints a table.

    tools/ros_env.sh python bench/bench_h2c_pipeline.py [--frames 60] [--model DIR] [--onnx]
"""
from __future__ import annotations

import argparse
import os
import time

import cv2
import torch

from how2compress_ros.emphasis.model import EmphasisModel
from how2compress_ros.pipeline import EdgeSettings, How2CompressEdge
from offload_common.frame_sources import SyntheticSceneSource, VideoFileSource

MODEL = "models/how2compress/ea-ssdlite-sensitivity-d2"


def frames(n):
    path = "data/footage/vtest.avi"
    src = VideoFileSource(path) if os.path.isfile(path) else SyntheticSceneSource(768, 576)
    out = []
    for f in src:
        out.append(f.rgb)
        if len(out) == n:
            return out
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", default=MODEL, help="EA model folder")
    ap.add_argument("--onnx", action="store_true", help="run the EA model with ONNX Runtime (the node's use_onnx)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    base = frames(args.frames)
    print(f"{args.model}{' (ONNX Runtime)' if args.onnx else ''}, {args.threads} threads")
    print(f"{'size':>10} {'D':>2} {'reuse':>5} {'EA ms':>7} {'enc ms':>7} {'total ms':>9} {'fps':>6}")
    for (w, h), d in (((640, 360), 2), ((1280, 720), 2), ((1280, 720), 4)):
        model = EmphasisModel.from_pretrained(args.model)
        model.config.downsample = d
        if args.onnx:
            from how2compress_ros.emphasis.onnx_model import OnnxEmphasisModel
            from offload_common.onnx_runtime import OnnxSettings

            model = OnnxEmphasisModel(model, OnnxSettings(threads=args.threads))
        imgs = [cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in base]
        for reuse in (1, 5):
            edge = How2CompressEdge(model, EdgeSettings(map_reuse=reuse, fps=30), "h2c/base45")
            edge.process(imgs[0])
            ea = enc = 0.0
            t0 = time.perf_counter()
            for img in imgs:
                for p in edge.process(img):
                    ea += p.model_ms
                    enc += p.encode_ms
            total = 1000 * (time.perf_counter() - t0) / len(imgs)
            edge.close()
            print(f"{w}x{h:<5} {d:>2} {reuse:>5} {ea / len(imgs):7.1f} {enc / len(imgs):7.2f} {total:9.1f} "
                  f"{1000 / total:6.1f}")


if __name__ == "__main__":
    main()
