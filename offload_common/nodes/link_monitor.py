"""link_monitor: measures the link and chooses the configuration of one task stream for the SLA
(ApproxBit Eq. 1-2 over the profilers' lookup tables), publishing OffloadConfig for the edge
nodes and diagnostics. Runs on the edge side.

Measurement: round trips and capacity from the monitor's own probes (answered by link_echo on
the server side), liveness also from the LinkReceipts of the stream's payloads, an optional
externally reported rate (``link_rate_report``, std_msgs/Float32 in Mbit/s, e.g. from a
satellite modem) and optional interface counters. The SLA (``sla_kind``, ``sla_latency_ms``,
``sla_accuracy``) can be changed at run time with ``ros2 param set``; invalid values are refused.

Calibration (``calibrate_from_results``): the stream's results (``action_results`` /
``detections``, or ``vqa_answers`` with a VQA lookup table) carry their latency breakdown; the
monitor learns each configuration's real compute time and jitter from them and checks a latency
SLA against the predicted ``latency_quantile`` (offload_common/monitor/calibration.py). A result
of an offloading configuration that was in flight while the link estimate was down measured the
outage, not the configuration, and is left out (offload_common/monitor/outages.py).

Topics: subscribes ``link_receipts``, ``link_rate_report``, ``action_results`` and
``detections`` (``vqa_answers`` instead of both with a VQA table); publishes ``offload_config``
(OffloadConfig, latched), ``link_probe`` (LinkProbe), ``/diagnostics``.
"""
from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from std_msgs.msg import Float32

from edge_offload.msg import ActionResult, DetectionArray, LinkProbe, LinkReceipt, OffloadConfig, VqaAnswer
from offload_common.image_conversion import uint8_array
from offload_common.lookup_table import EDGE_ONLY, VQA_METRIC, LookupTable
from offload_common.monitor import (CalibrationSettings, ChooserSettings, ConfigurationChooser, EstimatorSettings,
                                    LatencyCalibrator, LinkEstimator, OutageLog, Sla, read_interface_bytes)
from offload_common.nodes.link_echo import PROBE_QOS
from offload_common.nodes.params import Param, declare_parameters, resolve_data_path
from offload_common.nodes.qos import DECISION_QOS, RESULT_QOS
from offload_common.nodes.runner import run_node, stamp_to_ns

PARAMETERS = (
    Param("lookup_tables", "models/approxbit/cnn3d-actions/lut_cpu.json",
          "comma-separated lookup-table JSON files (approxbit_profile / h2c_profile; approxbit_train_vqa writes "
          "<backbone>/vqa/lut_cpu.json for answers)", read_only=True),
    Param("stream_id", "var", "task stream this monitor decides for", read_only=True),
    Param("sla_kind", "latency", "latency: max accuracy s.t. latency < sla_latency_ms; "
          "accuracy: min latency s.t. accuracy > sla_accuracy"),
    Param("sla_latency_ms", 300.0, "latency bound (ms) of a latency SLA", range=(0.001, 10000000.0)),
    Param("sla_accuracy", 0.9, "accuracy bound in [0, 1] of an accuracy SLA", range=(0.0, 1.0)),
    Param("initial_config", "", "configuration assumed in force at start (empty: none)", read_only=True),
    Param("decision_period_s", 0.2, "how often the choice is re-evaluated", read_only=True, range=(0.001, 3600.0)),
    Param("publish_period_s", 1.0, "republish the decision in force this often (also on every switch)",
          read_only=True, range=(0.001, 3600.0)),
    Param("probe_period_s", 0.2, "small probes (liveness, base round trip); 0 disables probing",
          read_only=True, range=(0.0, 3600.0)),
    Param("capacity_probe_bytes", 20000, "size of the capacity probes", read_only=True, range=(0, 67108864)),
    Param("capacity_probe_period_s", 2.0, "a pair of capacity probes this often", read_only=True, range=(0.0, 3600.0)),
    Param("loss_timeout_s", 1.0, "link declared lost after this long without a receipt", read_only=True,
          range=(0.001, 3600.0)),
    Param("ewma_alpha", 0.3, "weight of a new sample in the bandwidth / delay averages", read_only=True,
          range=(0.001, 1.0)),
    Param("ewma_alpha_down", 0.7, "weight of a capacity sample below the estimate (a falling link is "
          "believed fast, a rising one slowly)", read_only=True, range=(0.001, 1.0)),
    Param("default_bandwidth_mbps", 1.0, "bandwidth assumed before the first measurement", read_only=True,
          range=(1e-06, 1000000.0)),
    Param("external_rate_max_age_s", 5.0, "an external rate report is used for this long", read_only=True,
          range=(0.0, 3600.0)),
    Param("interface", "", "network interface whose tx counter gives the goodput (empty: none)",
          read_only=True),
    Param("min_dwell_s", 5.0, "minimum time between switches made for improvement", read_only=True,
          range=(0.0, 86400.0)),
    Param("max_dwell_s", 60.0, "cap of the doubling re-entry dwell after SLA violations", read_only=True,
          range=(0.0, 86400.0)),
    Param("headroom", 0.1, "a latency SLA must be met with this fraction to spare to switch to a configuration",
          read_only=True, range=(0.0, 0.99)),
    Param("accuracy_margin", 0.005, "accuracy gain worth a switch", read_only=True, range=(0.0, 1.0)),
    Param("latency_margin", 0.1, "relative latency gain worth a switch", read_only=True, range=(0.0, 10.0)),
    Param("edge_scale", 1.0, "edge times of the tables x this (tables measured on another machine)",
          read_only=True, range=(0.001, 1000.0)),
    Param("server_scale", 1.0, "server times of the tables x this", read_only=True, range=(0.001, 1000.0)),
    Param("calibrate_from_results", True, "learn configurations' real latency from the stream's results",
          read_only=True),
    Param("calibration_window", 40, "results remembered per configuration for calibration", read_only=True,
          range=(1, 100000)),
    Param("calibration_min_results", 5, "results before a configuration's own times replace the table's",
          read_only=True, range=(1, 100000)),
    Param("latency_quantile", 0.9, "with calibration, a latency SLA must hold for this quantile of results "
          "(0.5: the median)", read_only=True, range=(0.01, 1.0)),
    Param("calibration_max_age_s", 30.0, "a configuration with no result for this long is predicted from its "
          "table entry again, so one left after a slow spell is tried again (0: never)", read_only=True,
          range=(0.0, 86400.0)),
    Param("log_period_s", 5.0, "log the link estimate and decision this often (0: only on switches)",
          read_only=True, range=(0.0, 86400.0)),
)
SLA_PARAMS = ("sla_kind", "sla_latency_ms", "sla_accuracy")


def method_of(config_id: str, entry_method: str) -> str:
    if config_id == EDGE_ONLY:
        return OffloadConfig.METHOD_EDGE_ONLY
    return OffloadConfig.METHOD_HOW2COMPRESS if entry_method == "how2compress" else OffloadConfig.METHOD_APPROXBIT


class LinkMonitorNode(Node):
    def __init__(self, **kwargs):
        super().__init__("link_monitor", **kwargs)
        self.p = declare_parameters(self, PARAMETERS)
        tables = []
        for path in filter(None, (s.strip() for s in self.p.lookup_tables.split(","))):
            t = LookupTable.load(resolve_data_path(path))
            if t.stream_id != self.p.stream_id:
                self.get_logger().warn(f"{path}: stream '{t.stream_id}', not '{self.p.stream_id}': skipped")
                continue
            tables.append(t)
        self.sla = Sla(self.p.sla_kind, self.p.sla_latency_ms, self.p.sla_accuracy)
        self.chooser = ConfigurationChooser(tables, ChooserSettings(
            self.p.min_dwell_s, self.p.max_dwell_s, self.p.headroom, self.p.accuracy_margin, self.p.latency_margin,
            self.p.edge_scale, self.p.server_scale), initial=self.p.initial_config or None,
            calibrator=LatencyCalibrator(CalibrationSettings(
                self.p.calibration_window, self.p.calibration_min_results, self.p.latency_quantile,
                self.p.calibration_max_age_s))
            if self.p.calibrate_from_results else None)
        self.by_id = {e.config_id: e for e in self.chooser.entries}
        self.ignored_results = 0
        self.outages = OutageLog()
        self.outage_results = 0          # results left out of calibration: in flight across an outage
        self.estimator = LinkEstimator(EstimatorSettings(self.p.ewma_alpha, self.p.loss_timeout_s,
                                                         min(8000, self.p.capacity_probe_bytes),
                                                         self.p.external_rate_max_age_s,
                                                         self.p.default_bandwidth_mbps, self.p.ewma_alpha_down))
        self.decision_seq = 0
        self.probe_seq = 0
        self._tick = 0
        self.last_decision = self.last_estimate = None
        self.last_publish_ns = 0
        self.config_pub = self.create_publisher(OffloadConfig, "offload_config", DECISION_QOS)
        self.probe_pub = self.create_publisher(LinkProbe, "link_probe", PROBE_QOS)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_subscription(LinkReceipt, "link_receipts", self._on_receipt, RESULT_QOS)
        self.create_subscription(Float32, "link_rate_report", self._on_rate, 10)
        if self.chooser.calibrator is not None:
            if all(t.metric == VQA_METRIC for t in tables):
                # a VQA table's times include the answer head's, as the answers' latency does
                self.create_subscription(VqaAnswer, "vqa_answers", self._on_result, RESULT_QOS)
            else:
                self.create_subscription(ActionResult, "action_results", self._on_result, RESULT_QOS)
                self.create_subscription(DetectionArray, "detections", self._on_result, RESULT_QOS)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.create_timer(self.p.decision_period_s, self._decide)
        self.create_timer(1.0, self._diagnose)
        if self.p.log_period_s > 0:
            self.create_timer(self.p.log_period_s, self._log_state)
        if self.p.probe_period_s > 0:
            self.create_timer(self.p.probe_period_s, self._probe)
            self._capacity_every = max(1, round(self.p.capacity_probe_period_s / self.p.probe_period_s))
        metrics = ", ".join(sorted({t.metric for t in tables}))
        self.get_logger().info(f"link monitor for '{self.p.stream_id}': {len(self.chooser.entries)} configurations "
                               f"from {len(tables)} table(s) (accuracy: {metrics}); SLA {self.sla}")

    # -- inputs ---------------------------------------------------------------------------------
    def _on_receipt(self, msg: LinkReceipt) -> None:
        now = self.get_clock().now().nanoseconds
        if msg.stream_id == "probe":
            self.estimator.on_receipt(int(msg.bytes), stamp_to_ns(msg.publish_stamp), now, int(msg.seq),
                                      stamp_to_ns(msg.receive_stamp))
        elif msg.stream_id == self.p.stream_id:
            # payload receipts leave the server after decoding: their round trip includes server
            # compute, so they only prove the link is alive
            self.estimator.on_alive(now)

    def _on_result(self, msg) -> None:
        """A result of this stream: its latency breakdown calibrates its configuration."""
        if msg.stream_id != self.p.stream_id:
            return
        entry = self.by_id.get(msg.config_id)
        est = self.last_estimate
        lat = msg.latency
        now_ns = self.get_clock().now().nanoseconds
        if entry is not None and entry.config_id != EDGE_ONLY and self.outages.crossed(
                stamp_to_ns(msg.header.stamp), now_ns):
            self.outage_results += 1
            if self.outage_results in (1, 10, 100) or self.outage_results % 1000 == 0:
                self.get_logger().info(f"result for '{msg.config_id}' ({lat.total_ms:.0f} ms) not used for "
                                       f"calibration: in flight across a link outage ({self.outage_results} so far)")
            return
        if entry is None or est is None or not self.chooser.calibrator.observe(
                entry, float(lat.total_ms), float(lat.transmit_ms), est.bandwidth_mbps, est.delay_ms,
                edge_ms=float(lat.edge_model_ms + lat.edge_encode_ms),
                server_ms=float(lat.decode_ms + lat.server_model_ms + lat.server_queue_ms), now_s=now_ns / 1e9):
            self.ignored_results += 1
            if self.ignored_results in (1, 10, 100) or self.ignored_results % 1000 == 0:
                self.get_logger().warn(f"result for '{msg.config_id}' not used for calibration "
                                       f"({self.ignored_results} so far): unknown configuration, no link "
                                       "estimate yet, or an impossible latency breakdown")

    def _on_rate(self, msg: Float32) -> None:
        self.estimator.on_external_rate(float(msg.data), self.get_clock().now().nanoseconds)

    def _on_set_parameters(self, params) -> SetParametersResult:
        values = {"sla_kind": self.sla.kind, "sla_latency_ms": self.sla.latency_ms, "sla_accuracy": self.sla.accuracy}
        for prm in params:
            if prm.name in SLA_PARAMS:
                values[prm.name] = prm.value
        try:
            sla = Sla(values["sla_kind"], float(values["sla_latency_ms"]), float(values["sla_accuracy"]))
        except (ValueError, TypeError) as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        if sla != self.sla:
            self.get_logger().info(f"SLA changed: {self.sla} -> {sla}")
            self.sla = sla
        return SetParametersResult(successful=True)

    def _probe(self) -> None:
        """A small probe; every capacity_probe_period_s instead a pair of large ones back to back."""
        large = self._tick % self._capacity_every == 0
        self._tick += 1
        for _ in range(2 if large else 1):
            msg = LinkProbe(stream_id="probe", seq=self.probe_seq)
            if large:
                msg.padding = uint8_array(bytes(self.p.capacity_probe_bytes))
            msg.header.stamp = self.get_clock().now().to_msg()
            self.probe_pub.publish(msg)
            self.probe_seq += 1

    # -- decisions ------------------------------------------------------------------------------
    def estimate(self):
        now = self.get_clock().now().nanoseconds
        if self.p.interface:
            tx = read_interface_bytes(self.p.interface)
            if tx is not None:
                self.estimator.on_interface_bytes(tx, now)
        return self.estimator.estimate(now), now

    def _decide(self) -> None:
        est, now = self.estimate()
        self.outages.update(est.up, now, est.since_last_receipt_s)
        if self.chooser.calibrator is not None:
            for cid in self.chooser.calibrator.expire(now / 1e9):
                self.get_logger().info(f"'{cid}': no result for {self.p.calibration_max_age_s:g} s, predicted from "
                                       "its table entry again")
        d = self.chooser.choose(self.sla, est.link_state(), now / 1e9)
        self.last_decision, self.last_estimate = d, est
        if d.switched:
            self.get_logger().info(f"-> {d.config_id}: {d.reason} (B {est.bandwidth_mbps:.2f} Mb/s from "
                                   f"{est.source}, delay {est.delay_ms:.1f} ms, predicted "
                                   f"{d.predicted_latency_ms:.0f} ms, accuracy {d.predicted_accuracy:.3f})")
        if d.switched or now - self.last_publish_ns >= self.p.publish_period_s * 1e9:
            self._publish(d, est, now)

    def _publish(self, d, est, now_ns: int) -> None:
        entry = next(e for e in self.chooser.entries if e.config_id == d.config_id)
        msg = OffloadConfig(stream_id=self.p.stream_id, decision_seq=self.decision_seq, config_id=d.config_id,
                            method=method_of(d.config_id, entry.method), reason=d.reason, link_up=est.up,
                            bandwidth_mbps=float(est.bandwidth_mbps), link_delay_ms=float(est.delay_ms),
                            predicted_latency_ms=float(min(d.predicted_latency_ms, 3.0e38)),
                            predicted_latency_tail_ms=float(min(d.predicted_tail_ms, 3.0e38)),
                            predicted_accuracy=float(d.predicted_accuracy), sla_kind=self.sla.kind,
                            sla_latency_ms=float(self.sla.latency_ms), sla_accuracy=float(self.sla.accuracy),
                            sla_feasible=d.feasible)
        msg.header.stamp = self.get_clock().now().to_msg()
        self.config_pub.publish(msg)
        self.decision_seq += 1
        self.last_publish_ns = now_ns

    def _log_state(self) -> None:
        d, est = self.last_decision, self.last_estimate
        if d is None:
            return
        self.get_logger().info(f"link {'up' if est.up else 'DOWN'}: B {est.bandwidth_mbps:.2f} Mb/s ({est.source}), "
                               f"delay {est.delay_ms:.1f} ms; {d.config_id} predicted "
                               f"{d.predicted_latency_ms:.0f} ms (tail {d.predicted_tail_ms:.0f}), accuracy {d.predicted_accuracy:.3f}"
                               f"{'' if d.feasible else ' (SLA infeasible)'}")

    def _diagnose(self) -> None:
        d = self.last_decision
        if d is None:
            return
        est = self.last_estimate
        st = DiagnosticStatus(name=f"link_monitor: {self.p.stream_id}", hardware_id="edge_offload")
        if not est.up:
            st.level, st.message = DiagnosticStatus.ERROR, "link down: edge-only fallback"
        elif not d.feasible:
            st.level, st.message = DiagnosticStatus.WARN, f"SLA infeasible: {d.reason}"
        else:
            st.level, st.message = DiagnosticStatus.OK, d.reason
        kv = {"config_id": d.config_id, "bandwidth_mbps": f"{est.bandwidth_mbps:.3f}", "bandwidth_source": est.source,
              "delay_ms": f"{est.delay_ms:.1f}", "goodput_mbps": "" if est.goodput_mbps is None
              else f"{est.goodput_mbps:.3f}", "predicted_latency_ms": f"{d.predicted_latency_ms:.1f}",
              "predicted_latency_tail_ms": f"{d.predicted_tail_ms:.1f}",
              "calibration_results": str(self.chooser.calibrator.results if self.chooser.calibrator else 0),
              "results_across_outages": str(self.outage_results),
              "calibrations_forgotten": str(self.chooser.calibrator.forgotten if self.chooser.calibrator else 0),
              "predicted_accuracy": f"{d.predicted_accuracy:.4f}", "switches": str(self.chooser.switches),
              "receipts": str(self.estimator.receipts), "sla": str(self.sla)}
        st.values = [KeyValue(key=k, value=v) for k, v in kv.items()]
        arr = DiagnosticArray(status=[st])
        arr.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(arr)


def main(args=None) -> int:
    return run_node(LinkMonitorNode, args)
