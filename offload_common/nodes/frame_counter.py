"""frame_counter: subscribes to images, decodes each one, and reports the count, rate and
size. With ``expected_frames`` > 0 it exits (code 0) once that many frames arrived, or with
code 1 when ``timeout_s`` passes first. Used by ``make demo`` and as a quick link check.

Topics: subscribes ``image_raw`` (sensor_msgs/Image, sensor-data QoS).
"""
from __future__ import annotations

import time

from rclpy.node import Node
from sensor_msgs.msg import Image

from offload_common.nodes.images import ImageReceiver
from offload_common.nodes.params import Param, declare_parameters
from offload_common.nodes.qos import SENSOR_QOS
from offload_common.nodes.runner import run_node, stamp_to_ns

PARAMETERS = (
    Param("expected_frames", 0, "exit after this many frames (0: run until stopped)", read_only=True,
          range=(0, 2147483647)),
    Param("timeout_s", 0.0, "with expected_frames: give up after this many seconds (0: never)",
          read_only=True, range=(0.0, 10000000.0)),
    Param("report_every", 25, "log a line every this many frames", read_only=True, range=(1, 2147483647)),
)


class FrameCounterNode(Node):
    def __init__(self, **kwargs):
        super().__init__("frame_counter", **kwargs)
        self.p = declare_parameters(self, PARAMETERS)
        self.received = 0
        self.images = ImageReceiver(self.get_logger())
        self.latencies_ms = []
        self.finished = False
        self.exit_code = 0
        self._t0 = time.monotonic()
        self.sub = self.create_subscription(Image, "image_raw", self._on_image, SENSOR_QOS)
        if self.p.expected_frames and self.p.timeout_s > 0:
            self.create_timer(self.p.timeout_s, self._on_timeout)
        self.get_logger().info(f"counting images on {self.sub.topic_name}")

    def _on_image(self, msg: Image) -> None:
        rgb = self.images.to_rgb(msg)
        if rgb is None:
            return
        now_ns = self.get_clock().now().nanoseconds
        self.latencies_ms.append((now_ns - stamp_to_ns(msg.header.stamp)) / 1e6)
        self.received += 1
        if self.received % max(1, self.p.report_every) == 0:
            rate = self.received / (time.monotonic() - self._t0)
            lat = sorted(self.latencies_ms[-self.p.report_every:])
            self.get_logger().info(
                f"{self.received} frames {rgb.shape[1]}x{rgb.shape[0]} {msg.encoding}, "
                f"{rate:.1f} fps, latency p50 {lat[len(lat) // 2]:.1f} ms")
        if self.p.expected_frames and self.received >= self.p.expected_frames:
            self.get_logger().info(
                f"received {self.received} frames ({self.images.rejected} rejected); done")
            self.finished = True

    def _on_timeout(self) -> None:
        if not self.finished:
            self.get_logger().error(
                f"timeout: {self.received} of {self.p.expected_frames} frames in {self.p.timeout_s:g} s")
            self.exit_code = 1
            self.finished = True


def main(args=None) -> int:
    return run_node(FrameCounterNode, args)
