"""Median time of the whole backbone on one clip (torch, 1 thread), printed as ``median_ms X``.
The adaptive experiment runs it inside and outside the edge's CPU limit: the ratio is the
monitor's ``edge_scale`` (the lookup table was measured on the unlimited CPU).

    python -m approxbit_ros.experiments.edge_speed --backbone models/approxbit/cnn3d-actions
"""
from __future__ import annotations

import argparse
import sys

from offload_common.experiments.adaptive import print_median_ms


def main(argv=None) -> int:
    import torch

    from approxbit_ros.backbones import blank_input
    from approxbit_ros.configurations import load_backbone

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", required=True)
    ap.add_argument("--clips", type=int, default=30)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    model = load_backbone(args.backbone)[0]
    x = blank_input(model)
    with torch.no_grad():
        print_median_ms(lambda: model(x), args.clips, warmup=3)
    return 0


if __name__ == "__main__":
    sys.exit(main())
