"""sla_scheduler: plays an SLA schedule on the link monitor, for experiments that change the SLA
during a run (the adaptive experiments). Each change goes through the monitor's standard
``set_parameters`` service; whether the monitor accepted it is logged (and so lands in a
recording of ``/rosout``), and the SLA in force is in every ``offload_config`` decision.

``sla_schedule`` is a comma-separated list of ``t_s:kind:value`` (kind ``latency`` with a bound in
ms, or ``accuracy`` with a bound in [0, 1]); times count from ``start_unix_s`` (0: node start).
"""
from __future__ import annotations

import time

from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.node import Node

from offload_common.monitor.chooser import parse_sla_schedule
from offload_common.nodes.params import Param, declare_parameters
from offload_common.nodes.runner import run_node

PARAMETERS = (
    Param("sla_schedule", "", "SLA changes 't_s:kind:value,...' (kind latency [ms] or accuracy [0-1])",
          read_only=True),
    Param("start_unix_s", 0.0, "time zero of the schedule, seconds since the epoch (0: node start)",
          read_only=True, range=(0.0, 1e11)),
    Param("monitor_node", "link_monitor", "node whose sla_* parameters the schedule sets", read_only=True),
)


class SlaSchedulerNode(Node):
    def __init__(self, **kwargs):
        super().__init__("sla_scheduler", **kwargs)
        self.p = declare_parameters(self, PARAMETERS)
        self.schedule = parse_sla_schedule(self.p.sla_schedule)
        self.t0 = self.p.start_unix_s or time.time()
        self.answers = []                       # (t_s, kind, value, accepted)
        self.param_client = self.create_client(SetParameters, f"{self.p.monitor_node}/set_parameters")
        if self.schedule:
            self.create_timer(0.05, self._play)
        self.get_logger().info(f"{len(self.schedule)} SLA changes scheduled for {self.p.monitor_node}")

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
            self.answers.append((t, kind, value, ok))
            text = f"SLA at {t:g} s: {kind} {value:g} {'accepted' if ok else 'REFUSED'} by {self.p.monitor_node}"
            if ok:        # two call sites: rclpy refuses one call site logging at two severities
                self.get_logger().info(text)
            else:
                self.get_logger().error(text)

        future.add_done_callback(done)


def main(args=None) -> int:
    return run_node(SlaSchedulerNode, args)
