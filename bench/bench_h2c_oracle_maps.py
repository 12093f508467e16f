#!/usr/bin/env python3
"""How much can any emphasis map save here? An upper-bound study for How2Compress.

An "oracle" EA model: macroblocks of the people the detector finds on the raw frame (score >= 0.2,
grown by --dilate macroblocks) at QP q, everything else at q + delta. For each clip and
(dilate, delta) the cheapest q whose F1 stays >= 0.98 against raw-frame detections is searched
exactly as h2c_evaluate searches uniform QP, and the bitrate is compared with uniform QP's.
A trained EA model can at best approach these maps, so this bounds what How2Compress can save
with this detector and footage. A variant ``s<share>:<delta>`` instead puts q on the fewest
macroblocks holding ``share`` of the detector's sensitivity (``emphasis/sensitivity.py``:
integrated-gradient attribution of its score change between the raw frame and its QP-40
version) and q + delta elsewhere; ``s<share>:<delta>:<radius>`` first averages each frame's
attribution shares over the frames within ``radius`` (``temporal_mean``). ``n<share>:<delta>:<radius>``
uses the frames within ``radius`` but never the frame being coded, and ``p<share>:<delta>:<lag>``
only the ``lag`` frames before it (``neighbour_mean``): what is left of the oracle when the frame's
own sensitivity is not known, which no EA model knows. Prints a table; the saving is read both at
the cheapest passing setting and at the fitted rate where F1 reaches the bound (``rate_at_bound``,
two settings run either side of each crossing, and the passes confirmed as h2c_evaluate's
``--confirm`` does), with a paired block-bootstrap 95 % interval of the fitted saving.

    tools/ros_env.sh python bench/bench_h2c_oracle_maps.py --frames 60
    tools/ros_env.sh python bench/bench_h2c_oracle_maps.py --frames 120 --variants 1:6,s0.9:6
    tools/ros_env.sh python bench/bench_h2c_oracle_maps.py --frames 120 --variants s0.9:6,n0.9:6:2,p0.9:6:1
"""
from __future__ import annotations

import argparse
import functools

import numpy as np
import torch

from how2compress_ros.codec import mb_grid
from how2compress_ros.detectors.factory import make_detector
from how2compress_ros.detectors.tiled import parse_tiles
from how2compress_ros.emphasis.proxy import dilate_mask, roi_mask
from how2compress_ros.emphasis.sensitivity import (frame_attribution, levels_from_attribution, neighbour_mean,
                                                   temporal_mean)
from how2compress_ros.evaluate_cli import EVAL_CLIPS, load_clip
from how2compress_ros.evaluation import (BASELINE_QPS, bootstrap_savings, cheapest_meeting_bound, chosen, interval,
                                         rate_at_bound, run_clip)


def oracle_shares(kind: str, attribution, radius: int):
    """The per-frame shares a sensitivity variant codes from: s (the frame's own, averaged over
    ``radius`` frames either side), n (the frames within ``radius``, never its own), p (the
    ``radius`` frames before it)."""
    if kind == "s":
        return temporal_mean(attribution, radius)
    if kind == "n":
        return neighbour_mean(attribution, radius, radius)
    if kind == "p":
        return neighbour_mean(attribution, radius, 0)
    raise ValueError(f"unknown sensitivity variant {kind!r}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", default=",".join(EVAL_CLIPS))
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--variants", default="1:6,1:10,2:10",
                    help="dilate:delta pairs, s<share>:<delta>[:<radius>], n<share>:<delta>:<radius>, "
                         "p<share>:<delta>:<lag> sensitivity variants")
    ap.add_argument("--footage", default="data/footage")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--confirm", type=int, default=3, help="as h2c_evaluate --confirm (0: the binary search only)")
    ap.add_argument("--bootstrap", type=int, default=1000, help="block-bootstrap samples (0: no interval)")
    ap.add_argument("--tiles", default="", help="run the detector on ROWSxCOLS overlapping tiles (e.g. 2x2)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if parse_tiles(args.tiles) != (1, 1) and any(v[0] in "snp" for v in args.variants.split(",")):
        ap.error("sensitivity variants attribute the untiled detector's scores; leave out --tiles")
    det, det_low = (make_detector("ssdlite", score_threshold=t, tiles=args.tiles) for t in (0.4, 0.2))
    qps = BASELINE_QPS
    print(f"{'clip':>10} {'map':>14} {'q':>4} {'kbit/s':>8} {'F1':>6} {'vs uniform':>10} {'fitted':>8}  95 % interval")
    search = functools.partial(cheapest_meeting_bound, knobs=qps, neighbours=2, bound=0.98, confirm=args.confirm)
    for name in args.clips.split(","):
        clip = load_clip(args.footage, name, args.frames)
        refs = [det.detect(f) for f in clip.frames]
        low = [det_low.detect(f) for f in clip.frames]
        grid = mb_grid(clip.frames[0].shape[1], clip.frames[0].shape[0])
        run = functools.partial(run_clip, clip, refs, det, confident=0.6)
        uni_runs = search(lambda q: run(lambda i, f: np.full(grid, q), q, "uniform", f"qp{q}", 0.98))
        uni, uni_fit = chosen(uni_runs), rate_at_bound(uni_runs, 0.98)
        rows = [("uniform", uni, uni_fit)]
        all_runs = {"uniform": uni_runs}
        attribution = None
        for v in args.variants.split(","):
            kind, delta, *radius = v.split(":")
            delta = int(delta)
            if kind[0] in "snp":
                if attribution is None:
                    attribution = [frame_attribution(det, f) for f in clip.frames]
                shares = oracle_shares(kind[0], attribution, int(radius[0]) if radius else 0)
                masks = [levels_from_attribution(a, (float(kind[1:]),)) > 0 for a in shares]
            else:
                masks = [dilate_mask(roi_mask(r, grid), int(kind)) for r in low]

            def oracle(q, masks=masks, delta=delta, v=v):
                maps = [np.where(m, q, min(51, q + delta)) for m in masks]
                return run(lambda i, f: maps[i], q, f"oracle {v}", f"q{q}", 0.98)
            runs = search(oracle)
            rows.append((f"oracle {v}", chosen(runs), rate_at_bound(runs, 0.98)))
            all_runs[f"oracle {v}"] = runs
        spread = (bootstrap_savings({name: all_runs}, 0.98, [label for label, _, _ in rows[1:]], args.bootstrap)
                  if args.bootstrap else {})
        for label, r, fit in rows:
            ok = "" if r.meets_bound else " (bound not met)"
            fitted = f"{1 - fit / uni_fit:+8.1%}" if fit and uni_fit else "     n/a"
            ci = ("  {:+.1%}…{:+.1%}".format(*interval(spread[label][name])) if label in spread else "")
            print(f"{name:>10} {label:>14} {r.setting:>4} {r.kbps:8.1f} {r.f1:6.3f} "
                  f"{1 - r.kbps / uni.kbps:+10.1%} {fitted}{ci}{ok}", flush=True)


if __name__ == "__main__":
    main()
