#!/usr/bin/env python3
"""ApproxBit's edge half on torch and on ONNX Runtime (edge_runtime: onnxruntime), per
configuration: median ms per clip (pre-processing + backbone to the offload point + encoder;
the whole backbone for edge_only), and whether the payloads agree (binary: identical bytes;
float codes: largest difference). One thread each, batch 1, the synthetic test clips.

    tools/ros_env.sh python bench/bench_approxbit_edge_runtime.py [--backbone DIR] [--clips 30]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from approxbit_ros.configurations import EDGE_ONLY, ConfigurationSet
from approxbit_ros.data.synthetic_actions import SyntheticActions
from approxbit_ros.onnx_edge import OnnxEdgeRuntime
from approxbit_ros.pipeline import ApproxBitEdge


def total_ms(out) -> float:
    return out.preprocess_ms + out.model_ms + out.encode_ms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", default="models/approxbit/cnn3d-actions")
    ap.add_argument("--clips", type=int, default=30)
    ap.add_argument("--providers", default="CPUExecutionProvider", help="comma-separated ONNX Runtime providers")
    args = ap.parse_args()
    torch.set_num_threads(1)
    configs = ConfigurationSet.from_pretrained(args.backbone)
    t = time.perf_counter()
    runtime = OnnxEdgeRuntime(configs, args.providers.split(","), threads=1)
    print(f"{args.backbone}: {len(configs.ids)} configurations exported to ONNX in {time.perf_counter() - t:.1f} s; "
          f"providers {', '.join(runtime.providers)}")
    clips = [SyntheticActions("test", args.clips)[i][0] for i in range(args.clips)]
    print(f"{'config':24s} {'torch ms':>9s} {'onnx ms':>8s} {'speed-up':>8s}  payloads")
    for cid in configs.ids:
        ref, onnx = ApproxBitEdge(configs, cid), ApproxBitEdge(configs, cid, runtime=runtime)
        ref.process(clips[0]), onnx.process(clips[0])                  # warm-up
        ta, tb, same, diff = [], [], 0, 0.0
        for clip in clips:
            a, b = ref.process(clip), onnx.process(clip)
            ta.append(total_ms(a)), tb.append(total_ms(b))
            if cid == EDGE_ONLY:
                same += a.prediction.class_id == b.prediction.class_id
            elif a.payload.encoding == b.payload.encoding and a.payload.data == b.payload.data:
                same += 1
            else:
                diff = max(diff, float(np.max(np.abs(a.payload.decode().astype(np.float32)
                                                     - b.payload.decode().astype(np.float32)))))
        what = "same top-1" if cid == EDGE_ONLY else "identical"
        note = f"{same}/{len(clips)} {what}" + (f", max |diff| {diff:.1e}" if diff else "")
        ma, mb = float(np.median(ta)), float(np.median(tb))
        print(f"{cid:24s} {ma:9.2f} {mb:8.2f} {ma / mb:7.2f}x  {note}", flush=True)


if __name__ == "__main__":
    main()
