"""A probe node for ApproxBit DDS tests: it sees the camera frames and the edge's payloads,
collects results and answers, publishes monitor decisions and hostile payloads, and spins in
its own thread. Subclasses add their subscriptions in ``subscribe``."""
import threading

import numpy as np

import rclpy  # noqa: E402


class ApproxBitProbe:
    def __init__(self, ctx, name: str, clip_frames: int):
        from rclpy.executors import SingleThreadedExecutor
        from sensor_msgs.msg import Image

        from edge_offload.msg import BinaryFeatures, OffloadConfig, VqaAnswer
        from offload_common.nodes.qos import DECISION_QOS, RESULT_QOS, SENSOR_QOS, payload_qos

        self.clip_frames = clip_frames
        self.node = rclpy.create_node(name, context=ctx)
        self.frames, self.payloads, self.answers = {}, {}, {}
        self.lock = threading.Lock()
        self.node.create_subscription(Image, "image_raw", self.on_image, SENSOR_QOS)
        self.node.create_subscription(BinaryFeatures, "binary_features", self.on_payload, payload_qos(30))
        self.node.create_subscription(VqaAnswer, "vqa_answers", self.on_answer, RESULT_QOS)
        self.decisions = self.node.create_publisher(OffloadConfig, "offload_config", DECISION_QOS)
        self.inject = self.node.create_publisher(BinaryFeatures, "binary_features", payload_qos(30))
        self.subscribe()
        self.ex = SingleThreadedExecutor(context=ctx)
        self.ex.add_node(self.node)
        self.thread = threading.Thread(target=self.ex.spin, daemon=True)
        self.thread.start()

    def subscribe(self) -> None:
        """More subscriptions (before spinning starts)."""

    def on_image(self, msg):
        from offload_common.image_conversion import image_msg_to_rgb
        from offload_common.nodes.runner import stamp_to_ns

        with self.lock:
            self.frames[stamp_to_ns(msg.header.stamp)] = image_msg_to_rgb(msg)

    def on_payload(self, msg):
        if msg.meta.stream_id == "var":
            self.payloads[msg.meta.seq] = msg

    def on_answer(self, msg):
        self.answers[(msg.seq, msg.edge_only)] = msg

    def decide(self, config_id, n):
        from edge_offload.msg import OffloadConfig

        self.decisions.publish(OffloadConfig(stream_id="var", decision_seq=n, config_id=config_id, reason="test"))

    def clip(self, first_ns, last_ns):
        """The frames the probe saw between two stamps, if it saw the whole clip."""
        with self.lock:
            stamps = sorted(s for s in self.frames if first_ns <= s <= last_ns)
            return np.stack([self.frames[s] for s in stamps]) if len(stamps) == self.clip_frames else None

    def last_frames(self, last_ns):
        """The clip that ends at ``last_ns`` (edge-only results carry no first stamp)."""
        with self.lock:
            stamps = sorted(s for s in self.frames if s <= last_ns)[-self.clip_frames:]
        return self.clip(stamps[0], last_ns) if len(stamps) == self.clip_frames else None

    def close(self):
        self.ex.shutdown()
        self.node.destroy_node()


def wait_while_running(pred, graph, timeout=60):
    """Wait for ``pred`` while asserting that both ApproxBit nodes keep running."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        assert graph.running("approxbit_edge") and graph.running("approxbit_server")
        time.sleep(0.1)
    return False
