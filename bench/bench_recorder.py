#!/usr/bin/env python3
"""offload_recorder's overhead: a publisher plays a run's traffic for --seconds (results, link
receipts and decisions at the stream's rate, /diagnostics at 1 Hz, and the payloads: ApproxBit
BinaryFeatures of --approxbit-bytes or How2Compress EncodedFrames of --h2c-bytes) while
offload_recorder records it, with and without payloads. Prints the recorder's CPU (its process's
user + system time over the run, % of one core), its resident memory at the end, and the bytes
per second it wrote to disk.

    tools/ros_env.sh python bench/bench_recorder.py [--seconds 30] [--rate-hz 10]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus

from edge_offload.msg import ActionResult, BinaryFeatures, DetectionArray, EncodedFrame, LinkReceipt, OffloadConfig
from offload_common.nodes.qos import DECISION_QOS, RESULT_QOS, payload_qos


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def disk_bytes(folder: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(folder) for f in fs)


def run(stream: str, payloads: bool, seconds: float, rate_hz: float, payload_bytes: int) -> dict:
    out = os.path.join(tempfile.mkdtemp(prefix="bench_recorder_"), "rec")
    proc = subprocess.Popen(["offload_recorder", "--ros-args", "-p", f"output:={out}",
                             "-p", f"record_payloads:={'true' if payloads else 'false'}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = rclpy.create_node("bench_recorder_traffic", context=ctx)
    result_type, payload_type, payload_topic = ((ActionResult, BinaryFeatures, "binary_features") if stream == "approxbit"
                                                else (DetectionArray, EncodedFrame, "encoded_frames"))
    results = node.create_publisher(result_type, "action_results" if stream == "approxbit" else "detections", RESULT_QOS)
    receipts = node.create_publisher(LinkReceipt, "link_receipts", RESULT_QOS)
    decisions = node.create_publisher(OffloadConfig, "offload_config", DECISION_QOS)
    diagnostics = node.create_publisher(DiagnosticArray, "/diagnostics", 10)
    payload = node.create_publisher(payload_type, payload_topic, payload_qos(30))
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and results.get_subscription_count() == 0:
            time.sleep(0.1)
        time.sleep(1.0)
        cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
        data = os.urandom(payload_bytes)
        for i in range(int(seconds * rate_hz)):
            p = payload_type(data=data)
            p.meta.seq = i
            payload.publish(p)
            r = result_type(seq=i, config_id="x")
            results.publish(r)
            receipts.publish(LinkReceipt(seq=i, bytes=payload_bytes, decoded_ok=True))
            decisions.publish(OffloadConfig(decision_seq=i, config_id="x", bandwidth_mbps=3.0))
            if i % int(rate_hz) == 0:
                diagnostics.publish(DiagnosticArray(status=[DiagnosticStatus(name="server", message="ok")]))
            time.sleep(max(0.0, t0 + (i + 1) / rate_hz - time.monotonic()))
        time.sleep(1.5)                                  # > flush_period_s
        cpu = cpu_seconds(proc.pid) - cpu0
        wall = time.monotonic() - t0
        rss = rss_mb(proc.pid)
        on_disk = disk_bytes(out)
    finally:
        proc.send_signal(2)
        proc.wait(timeout=30)
        node.destroy_node()
        rclpy.shutdown(context=ctx)
    return {"stream": stream, "payloads": payloads, "cpu_pct": 100 * cpu / wall, "rss_mb": rss,
            "kB_per_s": on_disk / wall / 1000, "on_disk_MB": on_disk / 1e6}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--rate-hz", type=float, default=10.0)
    ap.add_argument("--approxbit-bytes", type=int, default=256, help="ApproxBit payload (cnn3d/o2/enc/k4 packed)")
    ap.add_argument("--h2c-bytes", type=int, default=12000, help="How2Compress payload (an H.264 unit of 640x360)")
    args = ap.parse_args()
    rows = []
    for stream, size in (("approxbit", args.approxbit_bytes), ("h2c", args.h2c_bytes)):
        for payloads in (False, True):
            rows.append(run(stream, payloads, args.seconds, args.rate_hz, size) | {"payload_B": size})
    print(f"offload_recorder overhead: {args.seconds:g} s at {args.rate_hz:g} Hz per topic "
          f"(results, receipts, decisions, payloads; diagnostics at 1 Hz), this machine's CPU")
    print(f"| stream | payload B | payloads recorded | recorder CPU % of a core | RSS MB | kB/s to disk |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['stream']} | {r['payload_B']} | {'yes' if r['payloads'] else 'no'} | {r['cpu_pct']:.1f} | "
              f"{r['rss_mb']:.0f} | {r['kB_per_s']:.1f} |")


if __name__ == "__main__":
    main()
