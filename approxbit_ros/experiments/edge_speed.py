"""Median time of the whole backbone on one clip (torch, 1 thread), printed as ``median_ms X``.
The adaptive experiment runs it inside and outside the edge's CPU limit: the ratio is the
monitor's ``edge_scale`` (the lookup table was measured on the unlimited CPU).

    python -m approxbit_ros.experiments.edge_speed --backbone models/approxbit/cnn3d-actions

With ``--per-config`` it prints instead one JSON line: per configuration, the mean edge model
and encoder ms (the mean: inside a CPU quota a job of a few ms is throttled in some runs and not
in others, and only the mean over back-to-back runs is the sustained slowdown) of ``ApproxBitEdge.process`` on a synthetic test clip (what the lookup table's
``edge_ms`` / ``encode_ms`` measure), for ``bench/bench_weak_edge_table.py``.
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
    ap.add_argument("--per-config", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    if args.per_config:
        return per_configuration(args.backbone, args.clips)
    model = load_backbone(args.backbone)[0]
    x = blank_input(model)
    with torch.no_grad():
        print_median_ms(lambda: model(x), args.clips, warmup=3)
    return 0


def per_configuration(backbone: str, clips: int) -> int:
    import json

    import numpy as np

    from approxbit_ros.configurations import ConfigurationSet
    from approxbit_ros.data.synthetic_actions import SyntheticActions
    from approxbit_ros.pipeline import ApproxBitEdge

    configs = ConfigurationSet.from_pretrained(backbone)
    clip = SyntheticActions("test", 2)[0][0]
    out = {}
    for cid in configs.ids:
        edge = ApproxBitEdge(configs, cid)
        runs = [edge.process(clip) for _ in range(clips + 2)][2:]
        out[cid] = {"edge_ms": float(np.mean([r.model_ms for r in runs])),
                    "encode_ms": float(np.mean([r.encode_ms for r in runs]))}
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
