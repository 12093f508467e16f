"""Median time of the EA model on one frame of the given size (torch, 1 thread), printed as
``median_ms X``. The How2Compress adaptive experiment runs it inside and outside the edge's CPU
limit: the ratio is the monitor's ``edge_scale`` (the lookup table was measured on the unlimited CPU).

    python -m how2compress_ros.experiments.edge_speed --model models/how2compress/ea-mobilevitv2-050-d2-vtest-bikes
"""
from __future__ import annotations

import argparse
import sys

from offload_common.experiments.adaptive import print_median_ms


def main(argv=None) -> int:
    import numpy as np
    import torch

    from how2compress_ros.emphasis.model import EmphasisModel

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--width", type=int, default=768)
    ap.add_argument("--height", type=int, default=576)
    ap.add_argument("--frames", type=int, default=20)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    model = EmphasisModel.from_pretrained(args.model)
    rgb = np.random.default_rng(0).integers(0, 256, (args.height, args.width, 3), dtype=np.uint8)
    print_median_ms(lambda: model.predict_levels(rgb), args.frames)
    return 0


if __name__ == "__main__":
    sys.exit(main())
