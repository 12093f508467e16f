"""experiment_recorder: writes what an adaptive-offloading experiment needs to a JSON-lines file
and plays an SLA schedule on the link monitor.

Records (one JSON object per line, ``"type"`` first):
- ``result``: every ``action_results`` message (ApproxBit: stamp, seq, config, label, latency
  breakdown) and every ``detections`` message (How2Compress: the same, with the number of people
  as the label);
- ``answer``: every ``vqa_answers`` message (ApproxBit's VQA task: the same fields, the answer as
  the label, plus the question);
- ``decision``: every ``offload_config`` message (choice, reason, link estimate, prediction, SLA);
- ``sla``: every SLA change it asked the monitor for, and whether the monitor accepted it.

``sla_schedule`` is a comma-separated list of ``t_s:kind:value`` (kind ``latency`` with a bound in
ms, or ``accuracy`` with a bound in [0, 1]); times count from ``start_unix_s`` (0: node start).
Changes go through the monitor's standard ``set_parameters`` service.
"""
from __future__ import annotations

import json
import time

from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.node import Node

from edge_offload.msg import ActionResult, DetectionArray, OffloadConfig, VqaAnswer
from offload_common.monitor.chooser import parse_sla_schedule
from offload_common.nodes.params import Param, declare_parameters
from offload_common.nodes.qos import DECISION_QOS, RESULT_QOS
from offload_common.nodes.runner import run_node, stamp_to_ns

PARAMETERS = (
    Param("output", "experiment.jsonl", "JSON-lines file the records are appended to", read_only=True),
    Param("sla_schedule", "", "SLA changes 't_s:kind:value,...' (kind latency [ms] or accuracy [0-1])",
          read_only=True),
    Param("start_unix_s", 0.0, "time zero of the schedule, seconds since the epoch (0: node start)",
          read_only=True, range=(0.0, 1e11)),
    Param("monitor_node", "link_monitor", "node whose sla_* parameters the schedule sets", read_only=True),
)


class ExperimentRecorderNode(Node):
    def __init__(self, **kwargs):
        super().__init__("experiment_recorder", **kwargs)
        self.p = declare_parameters(self, PARAMETERS)
        self.schedule = parse_sla_schedule(self.p.sla_schedule)
        self.t0 = self.p.start_unix_s or time.time()
        self.out = open(self.p.output, "a", buffering=1)
        self.counts = {"result": 0, "answer": 0, "decision": 0, "sla": 0}
        self.create_subscription(ActionResult, "action_results", self._on_result, RESULT_QOS)
        self.create_subscription(DetectionArray, "detections", self._on_detections, RESULT_QOS)
        self.create_subscription(VqaAnswer, "vqa_answers", self._on_answer, RESULT_QOS)
        self.create_subscription(OffloadConfig, "offload_config", self._on_decision, DECISION_QOS)
        self.param_client = self.create_client(SetParameters, f"{self.p.monitor_node}/set_parameters")
        if self.schedule:
            self.create_timer(0.05, self._play)
        self.get_logger().info(f"recording to {self.p.output}; {len(self.schedule)} SLA changes scheduled")

    def _write(self, kind: str, record: dict) -> None:
        self.counts[kind] += 1
        self.out.write(json.dumps({"type": kind, "recv_ns": time.time_ns(), **record}) + "\n")

    def _on_result(self, m: ActionResult) -> None:
        self._write_result(m, m.edge_only, m.label, float(m.score))

    def _on_detections(self, m: DetectionArray) -> None:
        best = max((float(d.score) for d in m.detections), default=0.0)
        self._write_result(m, m.config_id == "edge_only", str(len(m.detections)), best)

    def _on_answer(self, m: VqaAnswer) -> None:
        self._write_result(m, m.edge_only, m.answer, float(m.score), kind="answer", question=m.question)

    def _write_result(self, m, edge_only: bool, label: str, score: float, kind: str = "result", **extra) -> None:
        lat = m.latency
        self._write(kind, {
            "stamp_ns": stamp_to_ns(m.header.stamp), "seq": m.seq, "config_id": m.config_id, "edge_only": edge_only,
            "label": label, "score": round(score, 4), "total_ms": lat.total_ms,
            "edge_ms": lat.edge_model_ms + lat.edge_encode_ms, "transmit_ms": lat.transmit_ms,
            "server_ms": lat.decode_ms + lat.server_model_ms, "queue_ms": lat.edge_queue_ms,
            "payload_bytes": lat.payload_bytes, **extra})

    def _on_decision(self, m: OffloadConfig) -> None:
        self._write("decision", {
            "stamp_ns": stamp_to_ns(m.header.stamp), "decision_seq": m.decision_seq, "config_id": m.config_id,
            "method": m.method, "reason": m.reason, "link_up": m.link_up, "bandwidth_mbps": m.bandwidth_mbps,
            "link_delay_ms": m.link_delay_ms, "predicted_latency_ms": m.predicted_latency_ms,
            "predicted_latency_tail_ms": m.predicted_latency_tail_ms,
            "predicted_accuracy": m.predicted_accuracy, "sla_kind": m.sla_kind, "sla_latency_ms": m.sla_latency_ms,
            "sla_accuracy": m.sla_accuracy, "sla_feasible": m.sla_feasible})

    def _play(self) -> None:
        now = time.time() - self.t0
        while self.schedule and self.schedule[0][0] <= now:
            if not self.param_client.service_is_ready():
                return                           # retried on the next tick
            t, kind, value = self.schedule.pop(0)
            self._request(t, kind, value)

    def _request(self, t: float, kind: str, value: float) -> None:
        bound = "sla_latency_ms" if kind == "latency" else "sla_accuracy"
        req = SetParameters.Request(parameters=[
            Parameter(name="sla_kind", value=ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=kind)),
            Parameter(name=bound, value=ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=value))])
        future = self.param_client.call_async(req)

        def done(f):
            ok = f.exception() is None and all(r.successful for r in f.result().results)
            self._write("sla", {"t_s": t, "kind": kind, "value": value, "accepted": ok})
            text = f"SLA at {t:g} s: {kind} {value:g} {'accepted' if ok else 'REFUSED'} by {self.p.monitor_node}"
            if ok:        # two call sites: rclpy refuses one call site logging at two severities
                self.get_logger().info(text)
            else:
                self.get_logger().error(text)

        future.add_done_callback(done)

    def destroy_node(self):
        self.get_logger().info(f"recorded {self.counts}")
        self.out.close()
        return super().destroy_node()


def main(args=None) -> int:
    return run_node(ExperimentRecorderNode, args)
