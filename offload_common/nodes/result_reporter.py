"""result_reporter: subscribes to the results the servers publish (``detections``,
``action_results``, and ``vqa_answers``, shown beside them) and logs what a person wants to see:
labels / detection counts, the latest answer, payload size and bitrate, end-to-end latency. With
``expected_results`` > 0 it exits (code 0) after that many results, or 1 after ``timeout_s``.
"""
from __future__ import annotations

import time
from collections import deque

from rclpy.node import Node

from edge_offload.msg import ActionResult, DetectionArray, VqaAnswer
from offload_common.nodes.params import Param, declare_parameters
from offload_common.nodes.qos import RESULT_QOS
from offload_common.nodes.runner import run_node

PARAMETERS = (
    Param("expected_results", 0, "exit after this many results (0: run until stopped)", read_only=True,
          range=(0, 2147483647)),
    Param("timeout_s", 0.0, "with expected_results: give up after this many seconds (0: never)",
          read_only=True, range=(0.0, 10000000.0)),
    Param("report_every", 10, "log a summary every this many results", read_only=True, range=(1, 2147483647)),
)


class ResultReporterNode(Node):
    def __init__(self, **kwargs):
        super().__init__("result_reporter", **kwargs)
        self.p = declare_parameters(self, PARAMETERS)
        self.count = 0
        self.finished = False
        self.exit_code = 0
        self.window = deque(maxlen=max(2, self.p.report_every))
        self.create_subscription(DetectionArray, "detections", self._on_detections, RESULT_QOS)
        self.create_subscription(ActionResult, "action_results", self._on_action, RESULT_QOS)
        self.create_subscription(VqaAnswer, "vqa_answers", self._on_answer, RESULT_QOS)
        self.last_answer = None
        self.labels = {}                    # (stream id, seq) -> label of recent action results
        if self.p.expected_results and self.p.timeout_s > 0:
            self.create_timer(self.p.timeout_s, self._on_timeout)

    def _record(self, latency, what: str) -> None:
        self.count += 1
        self.window.append((time.monotonic(), latency.payload_bytes, latency.total_ms))
        if self.count % max(1, self.p.report_every) == 0:
            t = [w[0] for w in self.window]
            span = max(t[-1] - t[0], 1e-6)
            kbps = 8 * sum(w[1] for w in list(self.window)[1:]) / span / 1000
            lat = sorted(w[2] for w in self.window)
            self.get_logger().info(f"{self.count} results; last: {what}; payload {latency.payload_bytes} B, "
                                   f"{kbps:.0f} kbit/s; latency p50 {lat[len(lat) // 2]:.0f} ms "
                                   f"(edge {latency.edge_model_ms + latency.edge_encode_ms:.1f}, link "
                                   f"{latency.transmit_ms:.1f}, server {latency.decode_ms + latency.server_model_ms:.1f})")
        if self.p.expected_results and self.count >= self.p.expected_results:
            self.get_logger().info(f"received {self.count} results; done")
            self.finished = True

    def _on_detections(self, msg: DetectionArray) -> None:
        best = max((d.score for d in msg.detections), default=0.0)
        self._record(msg.latency, f"{len(msg.detections)} {msg.detector} detections (best {best:.2f}) "
                                  f"seq {msg.seq} [{msg.config_id}]")

    def _on_answer(self, msg: VqaAnswer) -> None:
        self.last_answer = msg

    def _answer_text(self) -> str:
        """The latest answer, beside the action label of the same clip (answers and results
        come on two topics, in either order)."""
        a = self.last_answer
        if a is None:
            return ""
        label = self.labels.get((a.stream_id, a.seq))
        about = f"seq {a.seq}" + (f", '{label}'" if label else "")
        return f"; asked '{a.question}' about {about}: '{a.answer}' ({a.score:.2f})"

    def _on_action(self, msg: ActionResult) -> None:
        self.labels[(msg.stream_id, msg.seq)] = msg.label
        if len(self.labels) > 64:
            del self.labels[next(iter(self.labels))]
        self._record(msg.latency, f"'{msg.label}' ({msg.score:.2f}) seq {msg.seq} [{msg.config_id}]"
                                  f"{self._answer_text()}")

    def _on_timeout(self) -> None:
        if not self.finished:
            self.get_logger().error(f"timeout: {self.count} of {self.p.expected_results} results")
            self.exit_code, self.finished = 1, True


def main(args=None) -> int:
    return run_node(ResultReporterNode, args)
