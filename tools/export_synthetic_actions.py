#!/usr/bin/env python3
"""Write synthetic action clips as H.264 video files in one folder per class, the layout
``approxbit_train_configs --footage DIR --labels folders --split-by file`` reads: a check of the
whole footage data path (decoding, cropping, resizing, splitting, labels) against the committed
configurations, which were trained on the same clips in memory.

    tools/ros_env.sh python tools/export_synthetic_actions.py --out build/synthetic_files --clips 3900

Clips 0..N-1 of the synthetic ``train`` split (labels drawn at random per clip), 64x64, 16 frames
at 16 fps (one second each), libx264 at QP ``--qp`` (near-lossless by default).
"""
from __future__ import annotations

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def write_clip(path: str, frames, qp: int, fps: int = 16) -> None:
    import av

    with av.open(path, "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "yuv444p"
        s.options = {"qp": str(qp), "preset": "veryfast"}
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def main(argv=None) -> int:
    from tqdm import tqdm

    from approxbit_ros.data.synthetic_actions import CLASSES, SyntheticActions

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--clips", type=int, default=3900)
    ap.add_argument("--split", default="train", choices=("train", "val", "test"))
    ap.add_argument("--qp", type=int, default=4)
    args = ap.parse_args(argv)
    ds = SyntheticActions(args.split, args.clips)
    for name in CLASSES:
        os.makedirs(os.path.join(args.out, name.replace(" ", "_")), exist_ok=True)
    for i in tqdm(range(args.clips), desc="clips", unit="clip"):
        frames, label = ds[i]
        write_clip(os.path.join(args.out, CLASSES[label].replace(" ", "_"), f"{args.split}_{i:05d}.mp4"), frames,
                   args.qp)
    print(f"wrote {args.clips} clips of the {args.split} split to {args.out}/<class>/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
