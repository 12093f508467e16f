"""camera_source: publishes sensor_msgs/Image from a video file, an image folder, a ROS 2 bag
or the synthetic scene generator, at a fixed rate.

Topics: publishes ``image_raw`` (sensor_msgs/Image, sensor-data QoS). Remap as usual.
"""
from __future__ import annotations

import time

import numpy as np

from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from sensor_msgs.msg import Image

from offload_common.frame_sources import FrameStream, open_source, source_kinds
from offload_common.image_conversion import from_rgb, numpy_to_image_msg
from offload_common.nodes.params import Param, declare_parameters
from offload_common.nodes.qos import SENSOR_QOS
from offload_common.nodes.runner import run_node

PARAMETERS = (
    Param("source", "synthetic", f"frame source: {', '.join(source_kinds())}", read_only=True),
    Param("uri", "", "video file, image folder or bag path (unused for synthetic)", read_only=True),
    Param("bag_topic", "", "image topic inside the bag (empty: the only image topic)", read_only=True),
    Param("rate_hz", 10.0, "publish rate in frames per second (may be changed at run time)", range=(0.001, 10000.0)),
    Param("loop", True, "restart the source at its end", read_only=True),
    Param("width", 0, "output width in pixels (0: keep; with height 0 too, source size)", read_only=True,
          range=(0, 16384)),
    Param("height", 0, "output height in pixels (0: keep aspect ratio)", read_only=True, range=(0, 16384)),
    Param("frame_id", "camera", "header.frame_id of published images", read_only=True),
    Param("encoding", "rgb8", "published encoding: rgb8, bgr8, mono8, rgba8, bgra8, yuv422, yuyv, ...", read_only=True),
    Param("max_frames", 0, "stop after this many frames (0: no limit)", read_only=True, range=(0, 2147483647)),
    Param("seed", 0, "seed of the synthetic scene", read_only=True, range=(0, 2147483647)),
    Param("synthetic_width", 320, "synthetic scene width before resizing", read_only=True, range=(16, 8192)),
    Param("synthetic_height", 240, "synthetic scene height before resizing", read_only=True, range=(16, 8192)),
    Param("wait_for_subscribers", 0, "publish only once this many subscribers matched, plus 1 s "
          "(experiments: no frame lost to discovery; 0: publish at once)", read_only=True, range=(0, 1000)),
    Param("ground_truth_log", "", "append 'stamp_ns frame_index label' per labelled frame to this file "
          "(experiments score results against it; empty: off)", read_only=True),
)


class CameraSourceNode(Node):
    def __init__(self, **kwargs):
        super().__init__("camera_source", **kwargs)
        self.p = declare_parameters(self, PARAMETERS)
        from_rgb(np.zeros((2, 2, 3), np.uint8), self.p.encoding)  # unknown encoding: fail at start
        source = open_source(self.p.source, self.p.uri, width=self.p.synthetic_width,
                             height=self.p.synthetic_height, seed=self.p.seed,
                             bag_topic=self.p.bag_topic)
        self.stream = FrameStream(source, loop=self.p.loop, width=self.p.width,
                                  height=self.p.height, max_frames=self.p.max_frames).open()
        self.pub = self.create_publisher(Image, "image_raw", SENSOR_QOS)
        self.published = 0
        self._matched_at = None
        self.truth = open(self.p.ground_truth_log, "a", buffering=1) if self.p.ground_truth_log else None
        self._t0 = time.monotonic()
        self.timer = self.create_timer(1.0 / self.p.rate_hz, self._tick)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.get_logger().info(
            f"publishing {' '.join(filter(None, (self.p.source, self.p.uri)))} at {self.p.rate_hz:g} Hz on "
            f"{self.pub.topic_name} ({self.p.encoding}, loop={self.p.loop})")

    def _on_set_parameters(self, params) -> SetParametersResult:
        for param in params:
            if param.name == "rate_hz":              # its range (declare_parameters) refused <= 0, NaN, inf
                self.timer.cancel()
                self.destroy_timer(self.timer)
                self.timer = self.create_timer(1.0 / param.value, self._tick)
                self.get_logger().info(f"rate changed to {param.value:g} Hz")
        return SetParametersResult(successful=True)

    def _ready(self) -> bool:
        if self.p.wait_for_subscribers <= 0:
            return True
        if self._matched_at is None:
            if self.pub.get_subscription_count() < self.p.wait_for_subscribers:
                return False
            self._matched_at = time.monotonic()
            self.get_logger().info(f"{self.p.wait_for_subscribers} subscriber(s) matched; publishing in 1 s")
        return time.monotonic() - self._matched_at >= 1.0

    def _tick(self) -> None:
        if not self._ready():
            return
        frame = self.stream.next_frame()
        if frame is None:
            self.get_logger().info(f"end of source after {self.published} frames; stopping")
            self.timer.cancel()
            return
        msg = numpy_to_image_msg(frame.rgb, self.p.encoding, stamp=self.get_clock().now().to_msg(),
                                 frame_id=self.p.frame_id)
        self.pub.publish(msg)
        if self.truth is not None and frame.label is not None:
            stamp = msg.header.stamp
            self.truth.write(f"{stamp.sec * 1_000_000_000 + stamp.nanosec} {frame.index} {frame.label}\n")
        self.published += 1
        if self.published % 100 == 0:
            rate = self.published / (time.monotonic() - self._t0)
            self.get_logger().info(f"{self.published} frames published ({rate:.1f} fps)")


def main(args=None) -> int:
    return run_node(CameraSourceNode, args)
