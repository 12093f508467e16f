#!/usr/bin/env python3
"""How many of a clip's bits can an emphasis map take away from the background at all?

How2Compress saves by coding macroblocks coarser than uniform QP would. This bench keeps the
people's macroblocks (the detector's boxes on the raw frame, score >= 0.2, grown by one
macroblock) at the clip's uniform-QP operating point q and codes everything else at q + delta,
up to QP 51, the coarsest H.264 allows. No detection runs on the coded frames: the numbers are
bitrates only, and the delta = max row is the most any map that keeps the people at q can save,
whatever it does to accuracy. It also prints how the bits split between IDR and P frames
(GOP 30, as in ``h2c_evaluate``): with a static camera the background of P-frames is mostly
skipped, so its cost is in the IDR frames.

    tools/ros_env.sh python bench/bench_h2c_background_headroom.py
    tools/ros_env.sh python bench/bench_h2c_background_headroom.py --clips vtest-held-out --qps vtest-held-out:31
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from how2compress_ros.codec import H264EncoderConfig, MacroblockQPEncoder, mb_grid
from how2compress_ros.detectors.ssdlite_person import SSDLitePersonDetector
from how2compress_ros.emphasis.proxy import dilate_mask, roi_mask
from how2compress_ros.evaluate_cli import EVAL_CLIPS, check_clip_names, load_clip

#: each clip's uniform-QP operating point (cheapest QP with F1 >= 0.98 in
#: docs/experiments/h2c_eval_vtest-bikes_levels_38-32.txt and h2c_eval_committed_vtest_held_out.txt)
UNIFORM_QP = {"vtest-400": 31, "carphone": 41, "bikes": 32, "vtest-held-out": 31}


def encode(clip, maps, base_qp: int, gop: int = 30):
    """Bits of each frame and whether it was an IDR frame."""
    h, w = clip.frames[0].shape[:2]
    sizes, idr = [], []
    cfg = H264EncoderConfig(w, h, fps=clip.fps, gop=gop, preset="veryfast", base_qp=base_qp)
    with MacroblockQPEncoder(cfg) as enc:
        units = [u for rgb, qp in zip(clip.frames, maps) for u in enc.encode(rgb, qp)] + list(enc.flush())
    for u in units:
        sizes.append(len(u.data) * 8)
        idr.append(u.keyframe)
    return np.array(sizes), np.array(idr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", default=",".join(EVAL_CLIPS))
    ap.add_argument("--qps", default="", help="clip:qp pairs overriding the uniform-QP operating points")
    ap.add_argument("--deltas", default="4,10,51", help="background QP offsets (capped at QP 51)")
    ap.add_argument("--frames", type=int, default=0, help="first N frames of each clip (0 = all)")
    ap.add_argument("--footage", default="data/footage")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    names = args.clips.split(",")
    check_clip_names(names)
    qps = dict(UNIFORM_QP, **{k: int(v) for k, v in (p.split(":") for p in args.qps.split(",") if p)})
    deltas = [int(d) for d in args.deltas.split(",")]
    det = SSDLitePersonDetector(score_threshold=0.2)
    print(f"{'clip':>14} {'q':>3} {'background':>10} {'people MBs':>10} {'kbit/s':>8} {'IDR share':>9} "
          f"{'saving vs uniform':>17}")
    for name in names:
        clip = load_clip(args.footage, name, args.frames)
        q = qps[name]
        grid = mb_grid(clip.frames[0].shape[1], clip.frames[0].shape[0])
        people = [dilate_mask(roi_mask(det.detect(f), grid), 1) for f in clip.frames]
        share = float(np.mean(people))
        uniform_bits = None
        for bg in sorted({min(51, q + d) for d in [0] + deltas}):
            bits, idr = encode(clip, [np.where(m, q, bg) for m in people], q)
            kbps = bits.sum() * clip.fps / len(clip.frames) / 1000
            uniform_bits = uniform_bits or bits.sum()
            label = "= q" if bg == q else f"QP {bg}"
            print(f"{name:>14} {q:>3} {label:>10} {share:>10.1%} {kbps:8.1f} {bits[idr].sum() / bits.sum():>9.1%} "
                  f"{1 - bits.sum() / uniform_bits:>+17.1%}", flush=True)


if __name__ == "__main__":
    main()
