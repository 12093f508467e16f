#!/usr/bin/env python3
"""Compare importance-output EA models (h2c_train_sensitivity) on the validation frames (the last
20 % of each training segment) against the raw, frame-by-frame detector-sensitivity shares: KL,
the captured share (the part of the sensitivity held by the model's top macroblocks when it may
pick as many as the target needs for 90 %), and the fraction of macroblocks each model and the
target put at levels >= 4 .. >= 1 at the target's shares 50 / 70 / 85 / 95 %. Needs the
sensitivity cache h2c_train_sensitivity wrote (--sensitivity-cache).

    tools/ros_env.sh python bench/compare_h2c_importance_models.py --cache artifacts/h2c-sens \\
        models/how2compress/ea-ssdlite-sensitivity-d2 OTHER_MODEL ...
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from how2compress_ros.emphasis.model import EmphasisModel, images_to_tensor
from how2compress_ros.emphasis.sensitivity import SensitivityConfig, levels_from_attribution
from how2compress_ros.emphasis.sensitivity_training import captured_share, importance_kl, share_targets
from how2compress_ros.emphasis.train_cli import cached_attributions, read_frames

SEGMENTS = (("data/footage/vtest.avi", 0, 400), ("data/footage/bikes.mp4", 130, 250),
            ("data/footage/Megamind.avi", 0, 270))
SHARES = (0.5, 0.7, 0.85, 0.95)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+")
    ap.add_argument("--cache", required=True, help="the sensitivity cache of the training run")
    ap.add_argument("--val-fraction", type=float, default=0.2)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    val = []
    for video, start, stop in SEGMENTS:
        rgbs = read_frames(video, start, stop, 1)
        targets = share_targets(cached_attributions(rgbs, None, SensitivityConfig(), args.cache))
        cut = len(rgbs) - round(args.val_fraction * len(rgbs))
        val += [(video.rsplit("/", 1)[-1], f, t) for f, t in zip(rgbs[cut:], targets[cut:]) if t.sum() > 0]
    print(f"{'model':44s} {'clip':13s} {'KL':>6s} {'captured':>8s}  MBs at >= 4,3,2,1 (model | target)")
    for path in args.models:
        model = EmphasisModel.from_pretrained(path)
        rows = {}
        with torch.no_grad():
            for clip, rgb, t in val:
                s = model(images_to_tensor([rgb]))[0, 0].double()
                p = torch.softmax(s.ravel(), 0).reshape(s.shape).numpy()
                ours, theirs = levels_from_attribution(p, SHARES), levels_from_attribution(t, SHARES)
                rows.setdefault(clip, []).append(
                    [importance_kl(s.float()[None], torch.from_numpy(t)[None]).item(), captured_share(s.numpy(), t),
                     *[np.mean(ours >= k) for k in (4, 3, 2, 1)], *[np.mean(theirs >= k) for k in (4, 3, 2, 1)]])
        name = path.rstrip("/").rsplit("/", 1)[-1]
        for clip, r in rows.items():
            m = np.mean(r, axis=0)
            print(f"{name:44s} {clip:13s} {m[0]:6.3f} {m[1]:8.3f}  "
                  + " ".join(f"{x:.3f}" for x in m[2:6]) + " | " + " ".join(f"{x:.3f}" for x in m[6:]))


if __name__ == "__main__":
    main()
