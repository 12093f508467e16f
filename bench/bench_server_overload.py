#!/usr/bin/env python3
"""Each server held to a CPU quota (offload_common.cpu_limit) under which its model needs about
twice the arrival period, for --seconds: result latency (capture -> result) with load shedding
(the default, shed_load true: the model runs on the newest payload of each stream), with
shed_load false (every payload served in order: the queue grows), and without overload (the
same quota at a quarter of the rate) for comparison. Prints p50 / p99 per run and per third of
the run (growth shows as a rising p50), the results served and skipped, and the issue's bound:
p99 within 3 arrival periods plus one processing time. Needs root (cgroups).

    tools/ros_env.sh python bench/bench_server_overload.py [--seconds 60] [--only approxbit|h2c]
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_load import ROOT, approxbit_valid, encoded_frame, footage_frames, h264_units, run_server  # noqa: E402


def calibrate(executable, over, common, fraction) -> float:
    """The server's time per payload (ms) under the quota: everything it does for one (checks,
    receipt, decoding, model, publishing), measured as the inverse of its throughput when it is
    saturated (payloads sent faster than it serves them, every one served in order)."""
    seconds = 12.0
    r = run_server(executable, {**over, "shed_load": False}, **{**common, "rate_hz": 30.0, "seconds": seconds},
                   cpu_fraction=fraction)
    served = [t for t in r.result_times_s if t <= seconds]
    return 1000.0 * seconds / max(1, len(served))


def thirds(r) -> str:
    if not r.latencies_ms:
        return "-"
    t = np.asarray(r.result_times_s)
    lat = np.asarray(r.latencies_ms)
    edges = np.linspace(0, t.max() + 1e-9, 4)
    return " / ".join(f"{np.median(lat[(t >= a) & (t < b)]):.0f}" if ((t >= a) & (t < b)).any() else "-"
                      for a, b in zip(edges, edges[1:]))


def bench(name, executable, over, common, fraction, seconds) -> bool:
    proc_ms = calibrate(executable, over, common, fraction)
    period_s = proc_ms / 2 / 1000                      # arrivals twice as fast as the model serves them
    rate = 1.0 / period_s
    bound = 3 * period_s * 1000 + proc_ms
    print(f"\n## {name}: CPU quota {fraction:g} core, {proc_ms:.0f} ms per payload (saturated throughput), "
          f"arrivals every {period_s * 1000:.0f} ms ({rate:.2f} Hz), {seconds:g} s per run")
    print(f"bound: p99 <= 3 periods + 1 processing time = {bound:.0f} ms")
    print("| run | rate Hz | results/sent | skipped | p50 ms | p99 ms | p50 by third ms | within bound |")
    print("|---|---|---|---|---|---|---|---|")
    ok = True
    for label, shed, r_hz in (("no overload", True, rate / 4), ("2x overload, shed_load", True, rate),
                              ("2x overload, shed_load false", False, rate)):
        r = run_server(executable, {**over, "shed_load": shed}, **{**common, "rate_hz": r_hz, "seconds": seconds},
                       cpu_fraction=fraction)
        within = r.pct(99) <= bound
        if shed:
            ok &= within
        print(f"| {label} | {r_hz:.2f} | {len(r.latencies_ms)}/{r.sent_valid} | {r.skipped} | {r.pct(50):.0f} | "
              f"{r.pct(99):.0f} | {thirds(r)} | {'yes' if within else 'no'} |", flush=True)
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--only", choices=("approxbit", "h2c"), default=None)
    args = ap.parse_args()
    from offload_common.cpu_limit import cpu_limit_available

    why = cpu_limit_available()
    if why:
        print(f"skipped: cannot set a CPU quota here ({why})")
        return 0
    ok = True
    if args.only in (None, "approxbit"):
        import torch

        from approxbit_ros.configurations import ConfigurationSet
        from edge_offload.msg import ActionResult, BinaryFeatures

        torch.set_num_threads(1)
        backbone = os.path.join(ROOT, "models", "approxbit", "videomae-actions")
        configs = ConfigurationSet.from_pretrained(backbone)
        common = dict(payload_type=BinaryFeatures, payload_topic="binary_features", result_type=ActionResult,
                      result_topic="action_results", valid=approxbit_valid(configs, "videomae/o2/enc/k24"))
        ok &= bench("approxbit_server (videomae/o2/enc/k24)", "approxbit_server",
                    {"vqa_question": "", "torch_threads": 1, "backbone_path": backbone}, common, 0.3, args.seconds)
    if args.only in (None, "h2c"):
        from edge_offload.msg import DetectionArray, EncodedFrame

        units = h264_units(footage_frames(300), gop=30)
        common = dict(payload_type=EncodedFrame, payload_topic="encoded_frames", result_type=DetectionArray,
                      result_topic="detections", valid=lambda node, seq: encoded_frame(node, units[seq % 300], seq))
        ok &= bench("h2c_server (ssdlite, 640x360 vtest)", "h2c_server",
                    {"publish_decoded_image": False, "torch_threads": 1}, common, 0.3, args.seconds)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
