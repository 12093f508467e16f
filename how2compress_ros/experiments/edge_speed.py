"""Median time of the EA model on one frame of the given size (torch, 1 thread), printed as
``median_ms X``. The How2Compress adaptive experiment runs it inside and outside the edge's CPU
limit: the ratio is the monitor's ``edge_scale`` (the lookup table was measured on the unlimited CPU).

    python -m how2compress_ros.experiments.edge_speed --model models/how2compress/ea-ssdlite-sensitivity-ft-d2

With ``--per-config CONFIG,...`` it prints instead one JSON line: per configuration, the mean
EA model and H.264 encoder ms (the mean: see approxbit_ros/experiments/edge_speed.py) of ``How2CompressEdge.process`` over consecutive frames of
``--footage`` at the lookup table's size (``edge_only``: the SSDLite detector on the frame), for
``bench/bench_weak_edge_table.py``.
"""
from __future__ import annotations

import argparse
import sys
import time

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
    ap.add_argument("--per-config", default="", help="comma-separated configuration ids")
    ap.add_argument("--footage", default="data/footage/vtest.avi")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    if args.per_config:
        return per_configuration(args, args.per_config.split(","))
    model = EmphasisModel.from_pretrained(args.model)
    rgb = np.random.default_rng(0).integers(0, 256, (args.height, args.width, 3), dtype=np.uint8)
    print_median_ms(lambda: model.predict_levels(rgb), args.frames)
    return 0


def per_configuration(args, config_ids) -> int:
    import json

    import cv2
    import numpy as np

    from how2compress_ros.detectors.ssdlite_person import SSDLitePersonDetector
    from how2compress_ros.emphasis.model import EmphasisModel
    from how2compress_ros.pipeline import EdgeSettings, How2CompressEdge

    cap = cv2.VideoCapture(args.footage)
    frames = []
    while len(frames) < args.frames + 3:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(cv2.resize(np.ascontiguousarray(bgr[:, :, ::-1]), (args.width, args.height)))
    model = EmphasisModel.from_pretrained(args.model)
    out = {}
    for cid in config_ids:
        if cid == "edge_only":
            det = SSDLitePersonDetector()
            times = []
            for f in frames:
                t = time.perf_counter()
                det.detect(f)
                times.append(1000 * (time.perf_counter() - t))
            out[cid] = {"edge_ms": float(np.mean(times[3:])), "encode_ms": 0.0}
            continue
        edge = How2CompressEdge(model, EdgeSettings(), cid)
        runs = [p for f in frames for p in edge.process(f)][3:]
        edge.close()
        out[cid] = {"edge_ms": float(np.mean([p.model_ms for p in runs])),
                    "encode_ms": float(np.mean([p.encode_ms for p in runs]))}
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
