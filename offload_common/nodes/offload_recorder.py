"""offload_recorder: records a run as rosbag2 bags in MCAP storage (``offload_common/recording``)
for ``offload_report`` and ``offload_replay``: results, the monitor's decisions, link receipts
and probes, ``/diagnostics``, ``/rosout``, parameter changes (SLA changes among them) and, within
``payload_budget_bytes``, the payloads themselves. Messages are taken serialized (raw
subscriptions) and written unchanged, with the receive time as the bag's log time. The output
folder holds one bag per split (``split_0000`` ...); every ``flush_period_s`` the chunk being
filled goes to disk, so a crash loses at most that long.

Parameters are listed in ``PARAMETERS``; topics are named relative to the node's namespace
(remap or namespace it like the nodes it records).
"""
from __future__ import annotations

import os
import time

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import Log, ParameterEvent
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_parameter_events

from edge_offload.msg import (ActionResult, BinaryFeatures, DetectionArray, EncodedFrame, KeyframeRequest, LinkProbe,
                              LinkReceipt, OffloadConfig, VqaAnswer)
from offload_common.nodes.link_echo import PROBE_QOS
from offload_common.nodes.params import Param, declare_parameters
from offload_common.nodes.qos import DECISION_QOS, RESULT_QOS, payload_qos
from offload_common.nodes.runner import run_node
from offload_common.recording.bag_writer import SplitBagWriter
from offload_common.recording.message_types import typestore

#: topic -> (message class, QoS, payload?) of everything the recorder knows how to record
RECORDABLE = {
    "action_results": (ActionResult, RESULT_QOS, False),
    "detections": (DetectionArray, RESULT_QOS, False),
    "vqa_answers": (VqaAnswer, RESULT_QOS, False),
    "offload_config": (OffloadConfig, DECISION_QOS, False),
    "link_receipts": (LinkReceipt, RESULT_QOS, False),
    "link_probe": (LinkProbe, PROBE_QOS, False),
    "keyframe_request": (KeyframeRequest, RESULT_QOS, False),
    "/diagnostics": (DiagnosticArray, QoSProfile(depth=50), False),
    "/rosout": (Log, QoSProfile(depth=200), False),
    "/parameter_events": (ParameterEvent, qos_profile_parameter_events, False),
    "binary_features": (BinaryFeatures, payload_qos(30), True),
    "encoded_frames": (EncodedFrame, payload_qos(30), True),
}
DEFAULT_TOPICS = [t for t in RECORDABLE if t != "/rosout"]

PARAMETERS = (
    Param("output", "", "recording folder, created (must be new or empty); empty = "
          "recordings/<date>-<time> in the working directory", read_only=True),
    Param("topics", DEFAULT_TOPICS, f"topics to record, from: {', '.join(RECORDABLE)}", read_only=True),
    Param("record_payloads", True, "also record the payload topics (binary_features, encoded_frames), "
          "within payload_budget_bytes", read_only=True),
    Param("payload_budget_bytes", 512 * 1024 * 1024, "payload bytes the recording may hold in all; past it "
          "payloads are counted and dropped (0: no limit)", read_only=True, range=(0, 1 << 44)),
    Param("split_bytes", 256 * 1024 * 1024, "a split ends at this many message bytes", read_only=True,
          range=(1 << 16, 1 << 40)),
    Param("split_duration_s", 600.0, "a split ends after this many seconds", read_only=True, range=(1.0, 86400.0)),
    Param("flush_period_s", 1.0, "the chunk being filled goes to disk this often: what a crash can lose",
          read_only=True, range=(0.05, 3600.0)),
    Param("compress", False, "zstd-compress the MCAP chunks", read_only=True),
)


class OffloadRecorderNode(Node):
    def __init__(self, **kwargs):
        super().__init__("offload_recorder", **kwargs)
        self.p = declare_parameters(self, PARAMETERS)
        unknown = [t for t in self.p.topics if t not in RECORDABLE]
        if unknown:
            raise ValueError(f"topics {unknown} cannot be recorded; choose from {', '.join(RECORDABLE)}")
        topics = [t for t in dict.fromkeys(self.p.topics) if self.p.record_payloads or not RECORDABLE[t][2]]
        output = self.p.output or os.path.join("recordings", time.strftime("%Y%m%d-%H%M%S"))
        self.writer = SplitBagWriter(output, typestore(), split_bytes=self.p.split_bytes,
                                     split_duration_s=self.p.split_duration_s,
                                     payload_budget_bytes=self.p.payload_budget_bytes, compress=self.p.compress,
                                     clock_ns=lambda: self.get_clock().now().nanoseconds)
        self.output = output
        for topic in topics:
            cls, qos, payload = RECORDABLE[topic]
            name = self.resolve_topic_name(topic)
            self.writer.add_topic(name, _msgtype(cls), payload=payload)
            self.create_subscription(cls, topic, lambda data, name=name: self._write(name, data), qos, raw=True)
        self._budget_warned = False
        self.create_timer(self.p.flush_period_s, self.writer.flush)
        self.create_timer(30.0, self._log_progress)
        self.get_logger().info(f"recording {len(topics)} topics to {os.path.abspath(output)}")

    def _write(self, topic: str, data: bytes) -> None:
        if not self.writer.write(topic, data) and not self._budget_warned:
            self._budget_warned = True
            self.get_logger().warning(f"payload budget of {self.p.payload_budget_bytes} B reached: payloads are no "
                                      "longer recorded (everything else still is)")

    def _log_progress(self) -> None:
        s = self.writer.stats
        self.get_logger().info(f"{sum(s.messages.values())} messages, {s.bytes_written / 1e6:.1f} MB in {s.splits} "
                               f"splits ({s.payloads_over_budget} payloads over budget)")

    def destroy_node(self):
        stats = self.writer.close()
        self.get_logger().info(f"recorded {sum(stats.messages.values())} messages ({stats.bytes_written / 1e6:.1f} "
                               f"MB, {stats.splits} splits) to {os.path.abspath(self.output)}")
        return super().destroy_node()


def _msgtype(cls) -> str:
    """``edge_offload.msg.ActionResult`` -> ``edge_offload/msg/ActionResult``."""
    return f"{cls.__module__.split('.')[0]}/msg/{cls.__name__}"


def main(args=None) -> int:
    return run_node(OffloadRecorderNode, args)
