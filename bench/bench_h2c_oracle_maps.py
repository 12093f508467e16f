#!/usr/bin/env python3
"""How much can any emphasis map save here? An upper-bound study for How2Compress.

An "oracle" EA model: macroblocks of the people the detector finds on the raw frame (score >= 0.2,
grown by --dilate macroblocks) at QP q, everything else at q + delta. For each clip and
(dilate, delta) the cheapest q whose F1 stays >= 0.98 against raw-frame detections is searched
exactly as h2c_evaluate searches uniform QP, and the bitrate is compared with uniform QP's.
A trained EA model can at best approach these maps, so this bounds what How2Compress can save
with this detector and footage. Prints a table.

    tools/ros_env.sh python bench/bench_h2c_oracle_maps.py --frames 60
"""
from __future__ import annotations

import argparse
import functools

import numpy as np
import torch

from how2compress_ros.codec import mb_grid
from how2compress_ros.detectors.ssdlite_person import SSDLitePersonDetector
from how2compress_ros.emphasis.proxy import dilate_mask, roi_mask
from how2compress_ros.evaluate_cli import EVAL_CLIPS, load_clip
from how2compress_ros.evaluation import BASELINE_QPS, cheapest_meeting_bound, chosen, run_clip


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", default=",".join(EVAL_CLIPS))
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--variants", default="1:6,1:10,2:10", help="dilate:delta pairs")
    ap.add_argument("--footage", default="data/footage")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    det, det_low = SSDLitePersonDetector(score_threshold=0.4), SSDLitePersonDetector(score_threshold=0.2)
    qps = BASELINE_QPS
    print(f"{'clip':>10} {'map':>14} {'q':>4} {'kbit/s':>8} {'F1':>6} {'vs uniform':>10}")
    for name in args.clips.split(","):
        clip = load_clip(args.footage, name)
        clip.frames = clip.frames[:args.frames]
        refs = [det.detect(f) for f in clip.frames]
        low = [det_low.detect(f) for f in clip.frames]
        grid = mb_grid(clip.frames[0].shape[1], clip.frames[0].shape[0])
        run = functools.partial(run_clip, clip, refs, det, confident=0.6)
        uni = chosen(cheapest_meeting_bound(
            lambda q: run(lambda i, f: np.full(grid, q), q, "uniform", f"qp{q}", 0.98), qps))
        rows = [("uniform", uni)]
        for v in args.variants.split(","):
            dil, delta = (int(x) for x in v.split(":"))
            masks = [dilate_mask(roi_mask(r, grid), dil) for r in low]

            def oracle(q, masks=masks, delta=delta, v=v):
                maps = [np.where(m, q, min(51, q + delta)) for m in masks]
                return run(lambda i, f: maps[i], q, f"oracle {v}", f"q{q}", 0.98)
            rows.append((f"oracle {v}", chosen(cheapest_meeting_bound(oracle, qps))))
        for label, r in rows:
            ok = "" if r.meets_bound else " (bound not met)"
            print(f"{name:>10} {label:>14} {r.setting:>4} {r.kbps:8.1f} {r.f1:6.3f} "
                  f"{1 - r.kbps / uni.kbps:+10.1%}{ok}", flush=True)


if __name__ == "__main__":
    main()
