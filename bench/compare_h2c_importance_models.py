#!/usr/bin/env python3
"""Compare importance-output EA models (h2c_train_sensitivity) on the validation frames (the last
20 % of each training segment) against the raw, frame-by-frame detector-sensitivity shares: KL,
the captured share (the part of the sensitivity held by the model's top macroblocks when it may
pick as many as the target needs for 90 %), and the fraction of macroblocks each model and the
target put at levels >= 4 .. >= 1 at the target's shares 50 / 70 / 85 / 95 %. Needs the
sensitivity cache h2c_train_sensitivity wrote (--sensitivity-cache). ``--reference-maps`` adds
rows for maps made from the detector's true sensitivity on other frames (``neighbour_mean``):
the previous frame's, and the mean of the two frames either side (never the frame's own);
``--smooth A`` also reads each model with its predicted shares averaged over time
(A x the previous frame's smoothed map + (1 - A) x this frame's).

    tools/ros_env.sh python bench/compare_h2c_importance_models.py --cache artifacts/h2c-sens \\
        models/how2compress/ea-ssdlite-sensitivity-d2 OTHER_MODEL ...
    tools/ros_env.sh python bench/compare_h2c_importance_models.py --cache artifacts/h2c-sens \\
        --reference-maps --smooth 0.5 models/how2compress/ea-ssdlite-sensitivity-ft-d2
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from how2compress_ros.emphasis.model import EmphasisModel, images_to_tensor
from how2compress_ros.emphasis.sensitivity import SensitivityConfig, levels_from_attribution, neighbour_mean
from how2compress_ros.emphasis.sensitivity_training import captured_share, importance_kl, share_targets
from how2compress_ros.emphasis.train_cli import cached_attributions, read_frames

SEGMENTS = (("data/footage/vtest.avi", 0, 400), ("data/footage/bikes.mp4", 130, 250),
            ("data/footage/Megamind.avi", 0, 270))
SHARES = (0.5, 0.7, 0.85, 0.95)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*")
    ap.add_argument("--cache", required=True, help="the sensitivity cache of the training run")
    ap.add_argument("--val-fraction", type=float, default=0.2)
    ap.add_argument("--reference-maps", action="store_true",
                    help="also read maps made from the true sensitivity of the frames around each frame")
    ap.add_argument("--smooth", type=float, default=0.0,
                    help="also read each model with its shares averaged over time with this weight on the past")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    if not args.models and not args.reference_maps:
        ap.error("give at least one model or --reference-maps")
    if not 0 <= args.smooth < 1:
        ap.error("--smooth must be in [0, 1)")
    torch.set_num_threads(args.threads)
    val = []              # (clip, frame, target, {reference map name: map}); consecutive frames per clip
    for video, start, stop in SEGMENTS:
        rgbs = read_frames(video, start, stop, 1)
        attributions = cached_attributions(rgbs, None, SensitivityConfig(), args.cache)
        targets = share_targets(attributions)
        references = {"previous frame's sensitivity": neighbour_mean(attributions, 1, 0),
                      "4 neighbours' sensitivity": neighbour_mean(attributions, 2, 2)}
        cut = len(rgbs) - round(args.val_fraction * len(rgbs))
        val += [(video.rsplit("/", 1)[-1], rgbs[i], targets[i], {k: v[i] for k, v in references.items()})
                for i in range(cut, len(rgbs))]
    print(f"{'map':44s} {'clip':13s} {'KL':>6s} {'captured':>8s}  MBs at >= 4,3,2,1 (map | target)")
    readings = {}                                    # name -> clip -> per-frame (shares, target)
    for path in args.models:
        model = EmphasisModel.from_pretrained(path)
        name = path.rstrip("/").rsplit("/", 1)[-1]
        with torch.no_grad():
            for clip, rgb, t, _ in val:
                s = model(images_to_tensor([rgb]))[0, 0].double()
                readings.setdefault(name, {}).setdefault(clip, []).append(
                    (torch.softmax(s.ravel(), 0).reshape(s.shape).numpy(), t))
        if args.smooth:
            smoothed = readings.setdefault(f"{name} smoothed {args.smooth:g}", {})
            for clip, frames in readings[name].items():
                past = None
                for p, t in frames:
                    past = p if past is None else args.smooth * past + (1 - args.smooth) * p
                    smoothed.setdefault(clip, []).append((past, t))
    if args.reference_maps:
        for clip, _, t, refs in val:
            for name, p in refs.items():
                readings.setdefault(name, {}).setdefault(clip, []).append((p, t))
    for name, clips in readings.items():
        for clip, frames in clips.items():
            r = []
            for p, t in frames:
                if t.sum() <= 0:
                    continue
                logp = torch.log(torch.from_numpy(np.asarray(p, np.float64)).clamp_min(1e-12))
                ours, theirs = levels_from_attribution(p, SHARES), levels_from_attribution(t, SHARES)
                r.append([importance_kl(logp.float()[None], torch.from_numpy(t)[None]).item(),
                          captured_share(p, t),
                          *[np.mean(ours >= k) for k in (4, 3, 2, 1)], *[np.mean(theirs >= k) for k in (4, 3, 2, 1)]])
            m = np.mean(r, axis=0)
            print(f"{name:44s} {clip:13s} {m[0]:6.3f} {m[1]:8.3f}  "
                  + " ".join(f"{x:.3f}" for x in m[2:6]) + " | " + " ".join(f"{x:.3f}" for x in m[6:]))


if __name__ == "__main__":
    main()
