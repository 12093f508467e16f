#!/usr/bin/env python3
"""Range coding of ApproxBit's binary codes (approxbit_ros/codec/entropy.py), per configuration
of each backbone, with the entropy models committed beside the configurations: packed bytes,
bytes sent (coded, or packed for the clips where coding does not pay: mean / p95 / max), ratio,
the share of clips sent packed, and the coder's median encode and decode µs per payload (one
thread, this CPU). Every payload's round trip is checked bit-exact. Test split clips.

    tools/ros_env.sh python bench/bench_entropy_coding.py [--backbone DIR ...] [--clips 1300]
"""
from __future__ import annotations

import argparse
import platform

import numpy as np
import torch

from approxbit_ros.configurations import ConfigurationSet
from approxbit_ros.data.synthetic_actions import SyntheticActions, clip_batches
from approxbit_ros.training.entropy_fitting import collect_codes, measure


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", nargs="+", default=["models/approxbit/cnn3d-actions",
                                                      "models/approxbit/videomae-actions"])
    ap.add_argument("--clips", type=int, default=1300, help="test clips")
    ap.add_argument("--timed", type=int, default=200, help="payloads timed per configuration")
    args = ap.parse_args()
    torch.set_num_threads(2)
    print(f"test clips {args.clips}; {platform.processor() or platform.machine()}; coder times: median of "
          f"{args.timed} payloads, one thread")
    print(f"{'config':22s} {'model':22s} {'packed':>6s} {'mean':>7s} {'p95':>6s} {'max':>6s} {'ratio':>6s} "
          f"{'packed%':>7s} {'enc us':>7s} {'dec us':>7s}")
    for folder in args.backbone:
        configs = ConfigurationSet.from_pretrained(folder, raw_features=False)
        codes = collect_codes(configs, (f for f, _ in clip_batches(SyntheticActions("test", args.clips), args.clips, 32)))
        ratios = []
        for cid in sorted(codes):
            model = configs.configurations[cid].entropy_model
            if model is None:
                print(f"{cid:22s} (no entropy model: run approxbit_fit_entropy)")
                continue
            r = measure(cid, model, codes[cid], args.timed)
            ratios.append(r.ratio)
            print(f"{cid:22s} {r.model:22s} {r.packed_bytes:6d} {r.coded_mean:7.1f} {r.coded_p95:6.0f} "
                  f"{r.coded_max:6d} {r.ratio:6.3f} {100 * r.fell_back:6.1f}% {r.encode_us:7.0f} {r.decode_us:7.0f}")
        if ratios:
            print(f"{configs.name}: mean ratio {np.mean(ratios):.3f} over {len(ratios)} configurations")


if __name__ == "__main__":
    main()
