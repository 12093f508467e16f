"""Shared by bench_server_hostile.py and bench_server_overload.py (run as a module, it does
nothing): a real server process (its console entry point, optionally under a CPU quota), and a
node in this process that publishes valid payloads at a fixed rate, optionally interleaved with
hostile ones, and records each valid payload's result latency (capture stamp -> result publish,
one clock), the server's /diagnostics counters and its peak RSS (VmHWM)."""
from __future__ import annotations

import os
import threading
import time
import zlib
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")


@dataclass
class RunResult:
    latencies_ms: List[float]                   # valid payloads' results, in publish order of the results
    result_times_s: List[float]                 # when each result arrived (bench clock, from the start)
    server_model_ms: List[float]
    skipped: int                                # sum of latency.server_skipped
    sent_valid: int
    sent_hostile: int
    counters: Dict[str, int]
    peak_rss_mb: float
    output: str = ""

    def pct(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")


def stamp_now(node):
    from builtin_interfaces.msg import Time

    ns = node.get_clock().now().nanoseconds
    return Time(sec=ns // 10**9, nanosec=ns % 10**9)


def approxbit_valid(configs, cid: str = "cnn3d/o2/enc/k4", n: int = 13):
    """Callables (node, seq) -> a valid BinaryFeatures of ``cid`` (library edge on synthetic clips)."""
    from approxbit_ros.data.synthetic_actions import SyntheticActions
    from approxbit_ros.pipeline import ApproxBitEdge

    edge = ApproxBitEdge(configs, cid)
    ds = SyntheticActions("test", 13)
    fields = [edge.process(ds[i % 13][0]).wire_fields(configs.name) for i in range(n)]

    def make(node, seq, stream="var", **over):
        from edge_offload.msg import BinaryFeatures

        f = {**fields[seq % n], **over}
        m = BinaryFeatures()
        m.meta.format_version = m.meta.FORMAT_VERSION
        m.meta.header.stamp = m.meta.publish_stamp = stamp_now(node)
        m.meta.stream_id, m.meta.seq, m.meta.config_id = stream, seq, f["config_id"]
        m.encoding, m.bit_order, m.backbone = f["encoding"], f["bit_order"], f["backbone"]
        m.offload_index, m.spatial_encoder, m.codebook_size = f["offload_index"], f["spatial_encoder"], \
            f["codebook_size"]
        m.shape, m.feature_shape, m.crc32, m.data = f["shape"], f["feature_shape"], f["crc32"], f["data"]
        return m
    return make


def h264_units(frames: List[np.ndarray], gop: int = 30):
    from how2compress_ros.pipeline import EdgeSettings, How2CompressEdge

    edge = How2CompressEdge(None, EdgeSettings(gop=gop, preset="ultrafast"), "uniform/qp30")
    try:
        return [u for f in frames for u in edge.process(f)]
    finally:
        edge.close()


def encoded_frame(node, unit, seq, stream="det", width=None, height=None, data=None, stamp=None):
    from edge_offload.msg import EncodedFrame

    m = EncodedFrame()
    m.meta.format_version = m.meta.FORMAT_VERSION
    m.meta.header.stamp = stamp or stamp_now(node)
    m.meta.publish_stamp = stamp_now(node)
    m.meta.stream_id, m.meta.seq, m.meta.config_id = stream, seq, "uniform/qp30"
    data = unit.data if data is None else data
    m.codec, m.width, m.height = "h264", width or unit.width, height or unit.height
    m.keyframe, m.crc32, m.data = unit.keyframe, zlib.crc32(data), data
    return m


def footage_frames(n: int, width: int = 640, height: int = 360) -> List[np.ndarray]:
    """``n`` frames of data/footage/vtest.avi resized (the synthetic scene when it is missing)."""
    import cv2

    from offload_common.frame_sources import SyntheticSceneSource, VideoFileSource

    path = os.path.join(ROOT, "data", "footage", "vtest.avi")
    src = VideoFileSource(path) if os.path.isfile(path) else SyntheticSceneSource(width, height)
    out = []
    for f in src:
        out.append(cv2.resize(f.rgb, (width, height), interpolation=cv2.INTER_AREA))
        if len(out) == n:
            break
    return out


def _peak_rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def run_server(executable: str, overrides: Dict[str, object], *, payload_type, payload_topic: str,
               result_type, result_topic: str, valid: Callable, rate_hz: float, seconds: float,
               hostile: Optional[Callable] = None, hostile_per_valid: int = 0, cpu_fraction: float = 0.0,
               warmup: int = 3) -> RunResult:
    """Start ``executable`` (ProcessGraph, optionally in a CpuLimit), publish ``valid(node, seq)``
    every 1/rate_hz s for ``seconds`` after ``warmup`` unmeasured payloads, ``hostile(node, i)``
    ``hostile_per_valid`` times between two valid ones, and collect the valid payloads' results."""
    import contextlib

    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor

    from offload_common.cpu_limit import CpuLimit
    from offload_common.nodes.qos import RESULT_QOS, payload_qos
    from offload_common.process_graph import NodeProcess, ProcessGraph

    limit = CpuLimit(cpu_fraction) if cpu_fraction else contextlib.nullcontext()
    ctx = rclpy.context.Context()
    rclpy.init(context=ctx)
    node = rclpy.create_node("server_bench", context=ctx)
    results, diags, t0 = [], [], [time.monotonic()]
    lock = threading.Lock()

    def on_result(msg):
        with lock:
            results.append((msg.seq, msg.stream_id, msg.latency, time.monotonic() - t0[0]))

    node.create_subscription(result_type, result_topic, on_result, RESULT_QOS)
    node.create_subscription(DiagnosticArray, "/diagnostics", diags.append, 10)
    pub = node.create_publisher(payload_type, payload_topic, payload_qos(200))
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(node)
    threading.Thread(target=ex.spin, daemon=True).start()
    sent_hostile = 0
    try:
        with limit as cpu:
            prefix = cpu.prefix() if cpu_fraction else None
            graph = ProcessGraph([NodeProcess(executable, overrides={"diagnostics_period_s": 0.5, **overrides})],
                                 echo=False, prefix=prefix)
            with graph:
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline and not (pub.get_subscription_count() and
                                                           node.count_publishers(result_topic)):
                    time.sleep(0.1)
                for seq in range(warmup):                     # first model runs pay lazy set-up: not measured
                    pub.publish(valid(node, seq))
                    time.sleep(max(1.0, 1.0 / rate_hz))
                time.sleep(2.0)
                with lock:
                    results.clear()
                t0[0] = time.monotonic()
                period = 1.0 / rate_hz
                n_valid = int(seconds * rate_hz)
                for i in range(n_valid):
                    target = t0[0] + i * period
                    for k in range(hostile_per_valid):
                        pub.publish(hostile(node, sent_hostile))
                        sent_hostile += 1
                        time.sleep(max(0.0, period / (hostile_per_valid + 1) * 0.5))
                    time.sleep(max(0.0, target - time.monotonic()))
                    pub.publish(valid(node, warmup + i))
                time.sleep(3.0)                               # results in flight
                pid = graph.procs[executable].pid
                rss = _peak_rss_mb(pid)
                output = graph.output(executable)
    finally:
        ex.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=ctx)
    valid_results = [r for r in results if r[1] in ("var", "det") and r[0] >= warmup]
    counters = {kv.key: int(kv.value) for kv in diags[-1].status[0].values} if diags else {}
    return RunResult([float(r[2].total_ms) for r in valid_results], [r[3] for r in valid_results],
                     [float(r[2].server_model_ms) for r in valid_results],
                     sum(int(r[2].server_skipped) for r in valid_results), n_valid, sent_hostile, counters, rss,
                     output)


def reasons(counters: Dict[str, int]) -> str:
    return ", ".join(f"{k[len('rejected_'):]} {v}" for k, v in sorted(counters.items()) if k.startswith("rejected_"))
