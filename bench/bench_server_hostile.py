#!/usr/bin/env python3
"""Both servers (real processes, over DDS) serving a valid stream, once clean and once with a
hostile mix interleaved: for approxbit_server wrong feature shapes (16x256x256), NaN float
payloads, sequence bombs (2^64 - 1), far-future stamps, bad CRCs and 1,000 new stream ids; for
h2c_server a real 2048x2048 access unit declared 64x64, a crafted SPS of 16000x16000, the same
2048x2048 unit declared at its size (over max_frame_pixels), sequence bombs, far-future stamps
and 1,000 new stream ids. Prints the valid payloads' latency p50 / p99 (capture -> result) for
both runs, the server's peak RSS, what was rejected by reason, and whether every hostile payload
was rejected before decoding. Targets (issue 26): hostile p99 within 2x of clean, peak RSS within
+200 MB, every hostile payload rejected (new stream ids beyond max_streams - 1: the first few
are valid payloads of a new stream and are served, as a new camera would be).

    tools/ros_env.sh python bench/bench_server_hostile.py [--seconds 20]
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server_load import (ROOT, approxbit_valid, encoded_frame, footage_frames, h264_units,  # noqa: E402
                         reasons, run_server, stamp_now)

FUTURE_S = 365 * 86400
BOMB = 2**64 - 1


def approxbit_runs(seconds: float):
    import torch

    from approxbit_ros.configurations import ConfigurationSet
    from edge_offload.msg import ActionResult, BinaryFeatures

    torch.set_num_threads(1)
    configs = ConfigurationSet.from_pretrained(os.path.join(ROOT, "models", "approxbit", "cnn3d-actions"))
    valid = approxbit_valid(configs)
    floats = approxbit_valid(configs, "cnn3d/o2/float32", 1)
    big = [16, 256, 256]
    bits = bytes(4 * int(np.prod(big)) // 8)

    def hostile(node, i):
        if i % 2 == 0 and i < 2000:                             # 1,000 new stream ids over the run
            return valid(node, 0, stream=f"intruder{i // 2}")
        kind = (i // 2) % 5
        if kind == 0:
            return valid(node, 900, shape=[4] + big, feature_shape=big, data=bits, crc32=_crc(bits))
        if kind == 1:                                           # seq 900: a plausible jump, so the
            m = floats(node, 900)                               # finiteness check is what refuses it
            v = np.frombuffer(bytes(m.data), "<f4").copy()
            v[0] = np.nan
            m.data, m.crc32, m.meta.stream_id = v.tobytes(), _crc(v.tobytes()), "var"
            return m
        if kind == 2:
            return valid(node, BOMB)
        if kind == 3:
            m = valid(node, 900)
            m.meta.header.stamp.sec += FUTURE_S
            return m
        m = valid(node, 900)
        m.crc32 ^= 1
        return m

    common = dict(payload_type=BinaryFeatures, payload_topic="binary_features", result_type=ActionResult,
                  result_topic="action_results", valid=valid, rate_hz=4.0, seconds=seconds)
    over = {"vqa_question": "", "torch_threads": 1}
    clean = run_server("approxbit_server", over, **common)
    attacked = run_server("approxbit_server", over, hostile=hostile, hostile_per_valid=int(2000 / (4 * seconds)) + 1,
                          **common)
    return clean, attacked


def _crc(data: bytes) -> int:
    import zlib

    return zlib.crc32(data)


def h2c_runs(seconds: float):
    from edge_offload.msg import DetectionArray, EncodedFrame
    from how2compress_ros.codec.sps import nal_units

    sys.path.insert(0, os.path.join(ROOT, "test"))
    from test_h2c_hostile_units import crafted_sps, with_sps

    rate = 10.0
    units = h264_units(footage_frames(int(seconds * rate) + 10), gop=30)
    (big,) = h264_units([np.full((2048, 2048, 3), 128, np.uint8)])
    key = units[0]
    huge_sps = with_sps(key.data, crafted_sps(1000, 1000))
    assert any(n[0] & 0x1F == 7 for n in nal_units(huge_sps))

    def valid(node, seq):
        return encoded_frame(node, units[seq % len(units)], seq)

    def hostile(node, i):
        if i % 2 == 0 and i < 2000:                             # 1,000 new stream ids over the run
            return encoded_frame(node, key, 0, stream=f"intruder{i // 2}")
        kind = (i // 2) % 5
        if kind == 0:
            return encoded_frame(node, big, 900, width=64, height=64)
        if kind == 1:
            return encoded_frame(node, key, 900, data=huge_sps)
        if kind == 2:
            return encoded_frame(node, big, 900)                    # 2048x2048 declared: over max_frame_pixels
        if kind == 3:
            return encoded_frame(node, key, BOMB)
        m = encoded_frame(node, key, 900)
        m.meta.header.stamp = stamp_now(node)
        m.meta.header.stamp.sec += FUTURE_S
        return m

    common = dict(payload_type=EncodedFrame, payload_topic="encoded_frames", result_type=DetectionArray,
                  result_topic="detections", valid=valid, rate_hz=rate, seconds=seconds)
    over = {"publish_decoded_image": False, "torch_threads": 1}
    clean = run_server("h2c_server", over, **common)
    attacked = run_server("h2c_server", over, hostile=hostile, hostile_per_valid=int(2000 / (rate * seconds)) + 1,
                          **common)
    return clean, attacked


def report(name: str, clean, attacked, max_streams: int = 8) -> bool:
    ok_lat = attacked.pct(99) <= 2 * clean.pct(99)
    ok_rss = attacked.peak_rss_mb <= clean.peak_rss_mb + 200
    c = attacked.counters
    intruders_served = max_streams - 1
    rejected_all = c.get("rejected", 0) >= attacked.sent_hostile - intruders_served
    print(f"\n## {name}: {clean.sent_valid} valid payloads; hostile run adds {attacked.sent_hostile} hostile ones")
    print("| run | results/sent | p50 ms | p99 ms | peak RSS MB |")
    print("|---|---|---|---|---|")
    for label, r in (("clean", clean), ("hostile mix", attacked)):
        print(f"| {label} | {len(r.latencies_ms)}/{r.sent_valid} | {r.pct(50):.1f} | {r.pct(99):.1f} | "
              f"{r.peak_rss_mb:.0f} |")
    print(f"rejected by reason: {reasons(c)}")
    served = c.get("decoded", c.get("accepted"))
    print(f"received {c.get('received')}, rejected {c.get('rejected')}, {'decoded' if 'decoded' in c else 'accepted'} "
          f"{served}, skipped by load shedding {attacked.skipped} (clean run {clean.skipped}), streams expired "
          f"{c.get('expired')}")
    print(f"p99 within 2x of clean: {'yes' if ok_lat else 'NO'}; peak RSS within +200 MB: {'yes' if ok_rss else 'NO'}; "
          f"every hostile payload rejected (but the {intruders_served} intruder streams that fit): "
          f"{'yes' if rejected_all else 'NO'}")
    return ok_lat and ok_rss and rejected_all


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--only", choices=("approxbit", "h2c"), default=None)
    args = ap.parse_args()
    ok = True
    if args.only in (None, "approxbit"):
        ok &= report("approxbit_server (cnn3d/o2/enc/k4, 4 clips/s)", *approxbit_runs(args.seconds))
    if args.only in (None, "h2c"):
        ok &= report("h2c_server (ssdlite, 640x360 vtest at 10 fps)", *h2c_runs(args.seconds))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
