#!/usr/bin/env python3
"""How2Compress against uniform QP at the same QP, knob by knob, on one clip: for each QP, uniform
QP there and How2Compress with the table shifted so that its top level sits there. When the EA
model's "do no harm" rule codes every frame uniformly (carphone with the detector-trunk model),
the two rows should match in F1 and differ in bitrate only by the per-macroblock QP signalling;
then any difference between their readings in h2c_evaluate comes from which QPs each search ran.

    tools/ros_env.sh python bench/compare_h2c_uniform_at_equal_qp.py --clip carphone --qps 36:43
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from how2compress_ros.codec import mb_grid
from how2compress_ros.codec.encoder import levels_to_qp_map
from how2compress_ros.detectors.factory import make_detector
from how2compress_ros.emphasis.model import EmphasisModel
from how2compress_ros.evaluate_cli import CLIPS, load_clip
from how2compress_ros.evaluation import run_clip, shifted_table
from how2compress_ros.pipeline import parse_level_table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/how2compress/ea-ssdlite-sensitivity-ft-d2")
    ap.add_argument("--clip", default="carphone", choices=sorted(CLIPS))
    ap.add_argument("--qps", default="36:43", help="first:stop of the QPs to run")
    ap.add_argument("--level-qps", default="38,37,35,34,32")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    clip = load_clip("data/footage", args.clip)
    det = make_detector("ssdlite", score_threshold=0.4)
    refs = [det.detect(f) for f in clip.frames]
    model = EmphasisModel.from_pretrained(args.model).eval()
    levels = [model.predict_levels(f) for f in clip.frames]
    uniform = sum(int((lv == model.config.levels - 1).all()) for lv in levels)
    print(f"{args.model} on {args.clip}: {uniform} of {len(levels)} frames coded uniformly by the rule "
          f"(uniform_above {model.config.uniform_above})")
    grid = mb_grid(clip.frames[0].shape[1], clip.frames[0].shape[0])
    table0 = parse_level_table(args.level_qps)
    lo, hi = (int(x) for x in args.qps.split(":"))
    print(f"{'QP':>3} | {'uniform kbit/s':>14} {'F1':>6} | {'how2compress kbit/s':>19} {'F1':>6} | bits")
    for qp in range(lo, hi):
        s = table0[-1] - qp
        table = shifted_table(table0, s)
        u = run_clip(clip, refs, det, lambda i, f: np.full(grid, qp), qp, "uniform", f"qp{qp}", 0.98, confident=0.6)
        h = run_clip(clip, refs, det, lambda i, f: levels_to_qp_map(levels[i], table), table[0], "how2compress",
                     f"shift{s}", 0.98, confident=0.6)
        print(f"{qp:>3} | {u.kbps:14.1f} {u.f1:6.3f} | {h.kbps:19.1f} {h.f1:6.3f} | {h.kbps / u.kbps - 1:+.1%}",
              flush=True)


if __name__ == "__main__":
    main()
