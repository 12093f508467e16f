"""link_echo: runs on the server side of the link and answers every LinkProbe from the link
monitor with a LinkReceipt (stream_id "probe"), so the monitor can measure round trip,
capacity and liveness even while the edge sends no payloads.

Topics: subscribes ``link_probe`` (LinkProbe, best effort); publishes ``link_receipts``.
"""
from __future__ import annotations

from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from builtin_interfaces.msg import Time
from edge_offload.msg import LinkProbe, LinkReceipt
from offload_common.nodes.params import Param, declare_parameters
from offload_common.nodes.qos import RESULT_QOS
from offload_common.nodes.runner import run_node

#: Probes: a lost probe is a measurement, not something to repair.
PROBE_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)

PARAMETERS = (
    Param("max_probe_bytes", 1000000, "larger probes are ignored", read_only=True, range=(0, 1073741824)),
)


class LinkEchoNode(Node):
    def __init__(self, **kwargs):
        super().__init__("link_echo", **kwargs)
        self.p = declare_parameters(self, PARAMETERS)
        self.answered = self.ignored = 0
        self.pub = self.create_publisher(LinkReceipt, "link_receipts", RESULT_QOS)
        self.create_subscription(LinkProbe, "link_probe", self._on_probe, PROBE_QOS)

    def _on_probe(self, msg: LinkProbe) -> None:
        now = self.get_clock().now().nanoseconds
        size = len(msg.padding)
        if size > self.p.max_probe_bytes:
            self.ignored += 1
            self.get_logger().error(f"probe {msg.seq} of {size} B ignored (limit {self.p.max_probe_bytes})")
            return
        r = LinkReceipt(stream_id=msg.stream_id or "probe", seq=msg.seq, config_id="probe", bytes=size,
                        decoded_ok=True)
        r.publish_stamp = msg.header.stamp
        r.receive_stamp = Time(sec=now // 1_000_000_000, nanosec=now % 1_000_000_000)
        self.pub.publish(r)
        self.answered += 1


def main(args=None) -> int:
    return run_node(LinkEchoNode, args)
