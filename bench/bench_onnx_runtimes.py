#!/usr/bin/env python3
"""Every model on torch vs ONNX Runtime (CPU provider) on this machine: median ms per call over
--runs calls of each after warm-up, the two alternating, both with --threads CPU threads. Models: the EA model on a 640x360
frame, the SSDLite detector on a 768x576 frame (whole detect(): resize, graph, decoding, NMS),
the ApproxBit edge halves (clip -> transmitted codes) and server halves (codes -> prediction,
decoder + rest of the backbone) of one configuration per offload point and kind for both
backbones, and the VQA head on a backbone feature map.

    tools/ros_env.sh python bench/bench_onnx_runtimes.py [--runs 30] [--threads 2]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def paired_ms(fn_torch, fn_onnx, runs: int, warmup: int = 3):
    """Both functions called alternately (so both see the same machine noise: this VM's timings
    drift by 2x between runs of the bench): (torch median ms, onnx median ms, per-pair ratio
    torch / onnx as median and interquartile range)."""
    for _ in range(warmup):
        fn_torch()
        fn_onnx()
    a, b = [], []
    for _ in range(runs):
        for fn, out in ((fn_torch, a), (fn_onnx, b)):
            t = time.perf_counter()
            fn()
            out.append(1000 * (time.perf_counter() - t))
    r = np.array(a) / np.array(b)
    return float(np.median(a)), float(np.median(b)), tuple(float(np.percentile(r, q)) for q in (50, 25, 75))


def frame(name: str, size=None) -> np.ndarray:
    import cv2

    cap = cv2.VideoCapture(os.path.join(ROOT, "data", "footage", name))
    for _ in range(30):
        ok, bgr = cap.read()
    rgb = np.ascontiguousarray(bgr[:, :, ::-1])
    return cv2.resize(rgb, size) if size else rgb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from offload_common.onnx_runtime import OnnxSettings

    settings = OnnxSettings(threads=args.threads)
    rows = []

    from how2compress_ros.emphasis.model import EmphasisModel
    from how2compress_ros.emphasis.onnx_model import OnnxEmphasisModel

    ea = EmphasisModel.from_pretrained(os.path.join(ROOT, "models", "how2compress", "ea-mobilevitv2-050-d2-vtest-bikes"))
    ea_onnx = OnnxEmphasisModel(ea, settings)
    rgb = frame("vtest.avi", (640, 360))
    rows.append(("EA model (MobileViTv2-0.5, d2), 640x360 frame",
                 *paired_ms(lambda: ea.predict_levels(rgb), lambda: ea_onnx.predict_levels(rgb), args.runs)))

    from how2compress_ros.detectors.ssdlite_person import SSDLitePersonDetector

    det, det_onnx = SSDLitePersonDetector(), SSDLitePersonDetector(onnx=settings)
    rgb = frame("vtest.avi")
    rows.append(("SSDLite person detector, 768x576 frame",
                 *paired_ms(lambda: det.detect(rgb), lambda: det_onnx.detect(rgb), args.runs)))

    from approxbit_ros.configurations import ConfigurationSet
    from approxbit_ros.data.synthetic_actions import SyntheticActions
    from approxbit_ros.onnx_edge import OnnxEdgeRuntime
    from approxbit_ros.onnx_server import OnnxServerRuntime
    from approxbit_ros.pipeline import ApproxBitEdge, ApproxBitServer
    from approxbit_ros.vqa.model import VqaHead, vqa_folder
    from approxbit_ros.vqa.onnx_head import OnnxVqaHead

    clip = SyntheticActions("test", 2)[0][0]
    for name in ("cnn3d-actions", "videomae-actions"):
        folder = os.path.join(ROOT, "models", "approxbit", name)
        configs = ConfigurationSet.from_pretrained(folder)
        edge_rt, server_rt = OnnxEdgeRuntime(configs, settings=settings), OnnxServerRuntime(configs, settings)
        torch_server, onnx_server = ApproxBitServer(configs), ApproxBitServer(configs, runtime=server_rt)
        picked = {}
        for c in configs.configurations.values():
            picked.setdefault((c.offload_point, c.kind), c.config_id)
        for cid in sorted(picked.values()):
            te, oe = ApproxBitEdge(configs, cid), ApproxBitEdge(configs, cid, runtime=edge_rt)
            rows.append((f"ApproxBit {name} {cid} edge half (clip -> codes)",
                         *paired_ms(lambda: te.process(clip), lambda: oe.process(clip), args.runs)))
            fields = te.process(clip).wire_fields(configs.name)
            seq = len(rows)
            adm_t = torch_server.admit("t", seq, **fields)
            adm_o = onnx_server.admit("o", seq, **fields)
            rows.append((f"ApproxBit {name} {cid} server half (codes -> prediction)",
                         *paired_ms(lambda: torch_server.serve(adm_t), lambda: onnx_server.serve(adm_o), args.runs)))
        if os.path.isdir(vqa_folder(folder)):
            head = VqaHead.from_pretrained(vqa_folder(folder))
            head_onnx = OnnxVqaHead(head, settings)
            fmap = ApproxBitEdge(configs, "edge_only").process(clip).final_map
            q = "which way does the object move?"
            rows.append((f"VQA head ({name} feature map)",
                         *paired_ms(lambda: head.answer(fmap, q), lambda: head_onnx.answer(fmap, q), args.runs)))

    print(f"torch {torch.__version__} vs onnxruntime (CPUExecutionProvider), {args.threads} threads, {args.runs} "
          "calls of each, alternating; ratio = torch / ONNX Runtime per pair of calls (above 1: ONNX Runtime faster)")
    print("| model | torch ms (median) | ONNX Runtime ms (median) | ratio median [IQR] |")
    print("|---|---|---|---|")
    for name, t, o, (r, lo, hi) in rows:
        print(f"| {name} | {t:.2f} | {o:.2f} | {r:.2f} [{lo:.2f}, {hi:.2f}] |")


if __name__ == "__main__":
    main()
