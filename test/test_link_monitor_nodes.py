"""link_monitor + link_echo over real DDS (loopback): the monitor measures the link with its
probes, publishes OffloadConfig decisions and diagnostics, takes a new SLA at run time (and
refuses an invalid one), falls back to edge-only when the echo side disappears and resumes
offloading when it returns."""
import shutil
import threading
import time

import pytest

from offload_common.lookup_table import LookupTable, LutEntry
from offload_common.process_graph import NodeProcess, ProcessGraph, config_path

import rclpy  # noqa: E402
pytestmark = pytest.mark.skipif(shutil.which("link_monitor") is None, reason="node entry points not installed")


class Watcher:
    def __init__(self, ctx):
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor

        from edge_offload.msg import OffloadConfig
        from offload_common.nodes.qos import DECISION_QOS

        self.node = rclpy.create_node("monitor_test_watcher", context=ctx)
        self.decisions, self.diagnostics = [], []
        self.node.create_subscription(OffloadConfig, "offload_config",
                                      lambda m: self.decisions.append((time.monotonic(), m)), DECISION_QOS)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self.diagnostics.append, 10)
        self.ex = SingleThreadedExecutor(context=ctx)
        self.ex.add_node(self.node)
        self.thread = threading.Thread(target=self.ex.spin, daemon=True)
        self.thread.start()

    def latest(self):
        return self.decisions[-1][1] if self.decisions else None

    def wait_for(self, pred, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = self.latest()
            if m is not None and pred(m):
                return time.monotonic()
            time.sleep(0.05)
        return None

    def set_parameters(self, **values):
        from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
        from rcl_interfaces.srv import SetParameters

        cli = self.node.create_client(SetParameters, "/link_monitor/set_parameters")
        assert cli.wait_for_service(timeout_sec=10)
        req = SetParameters.Request()
        for k, v in values.items():
            pv = (ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=v) if isinstance(v, str)
                  else ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=float(v)))
            req.parameters.append(Parameter(name=k, value=pv))
        fut = cli.call_async(req)
        deadline = time.monotonic() + 10
        while not fut.done() and time.monotonic() < deadline:
            time.sleep(0.05)
        return [r.successful for r in fut.result().results]

    def close(self):
        self.ex.shutdown()
        self.node.destroy_node()


def publish_results(pub, result_type, config_id, total_ms, n, transmit_ms=1.0, stamp=None):
    """``n`` results of ``config_id`` ("var" stream) with this latency (and capture stamp)."""
    for _ in range(n):
        m = result_type(stream_id="var", config_id=config_id)
        if stamp is not None:
            m.header.stamp = stamp
        m.latency.total_ms, m.latency.transmit_ms = total_ms, transmit_ms
        pub.publish(m)
        time.sleep(0.05)


def save_lut(tmp_path, accurate_bytes: int, metric: str = "top1") -> str:
    """Three configurations: accurate (payload ``accurate_bytes``), small, and a slow edge-only."""
    lut = str(tmp_path / "lut.json")
    LookupTable("var", "test", metric, [
        LutEntry("cnn3d/o2/noenc/k8", "binary", 0.99, accurate_bytes, 10, 1, 40, 5),
        LutEntry("cnn3d/o2/enc/k4", "binary", 0.90, 100, 10, 1, 5, 5),
        LutEntry("edge_only", "edge_only", 0.99, 0, 500),
    ]).save(lut)
    return lut


def test_monitor_decides_takes_a_new_sla_and_falls_back_when_the_link_goes(rclpy_context, tmp_path):
    lut = save_lut(tmp_path, accurate_bytes=100_000)
    watcher = Watcher(rclpy_context)
    monitor = NodeProcess("link_monitor", "link_monitor", config_path("link_monitor.yaml"),
                          overrides={"lookup_tables": lut, "sla_kind": "latency", "sla_latency_ms": 100.0,
                                     "min_dwell_s": 0.5, "loss_timeout_s": 1.0})
    echo = NodeProcess("link_echo", "link_echo", config_path("link_echo.yaml"))
    try:
        with ProcessGraph([monitor, echo], echo=False) as graph:
            assert watcher.wait_for(lambda m: m.config_id == "cnn3d/o2/noenc/k8" and m.link_up, 20), \
                graph.output("link_monitor")
            m = watcher.latest()
            assert m.method == "approxbit" and m.sla_feasible and m.bandwidth_mbps > 10
            assert 0 < m.predicted_latency_ms < 100 and m.predicted_accuracy == pytest.approx(0.99)

            assert watcher.set_parameters(sla_kind="fast") == [False]            # refused, nothing changes
            assert watcher.set_parameters(sla_latency_ms=5.0) == [True]          # infeasible now
            assert watcher.wait_for(lambda m: m.config_id == "cnn3d/o2/enc/k4" and not m.sla_feasible, 10)
            assert "lowest latency" in watcher.latest().reason
            assert watcher.set_parameters(sla_kind="accuracy", sla_accuracy=0.95) == [True, True]
            assert watcher.wait_for(lambda m: m.config_id == "cnn3d/o2/noenc/k8" and m.sla_kind == "accuracy", 10)

            graph.stop_one("link_echo")
            t_cut = time.monotonic()
            t_fallback = watcher.wait_for(lambda m: m.config_id == "edge_only" and not m.link_up, 10)
            assert t_fallback is not None and t_fallback - t_cut < 2.0, graph.output("link_monitor")
            deadline = time.monotonic() + 3.0          # diagnostics come at 1 Hz: see the ERROR before restoring
            while time.monotonic() < deadline and not any(
                    st.level in (b"\x02", 2) for d in watcher.diagnostics for st in d.status):
                time.sleep(0.05)
            graph.start_one("link_echo")
            t_back = time.monotonic()
            t_resume = watcher.wait_for(lambda m: m.config_id != "edge_only" and m.link_up, 15)
            assert t_resume is not None and t_resume - t_back < 5.0 + 3.0   # + the echo process's start-up
            assert graph.running("link_monitor")
    finally:
        watcher.close()
    seqs = [m.decision_seq for _, m in watcher.decisions]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)             # no decision twice
    levels = {s.level for d in watcher.diagnostics for s in d.status}
    assert {b"\x00", b"\x02"} <= levels or {0, 2} <= levels                 # OK and ERROR (link down) seen


@pytest.mark.parametrize("metric,topic", [("top1", "action_results"), ("top1", "detections"),
                                          ("vqa_accuracy", "vqa_answers")])
def test_monitor_learns_real_latency_from_results(rclpy_context, tmp_path, metric, topic):
    """The table says the accurate configuration fits 100 ms; its results say 300 ms. After a few
    results the monitor predicts from them and moves to the configuration that fits; results for
    unknown configurations or with impossible breakdowns are ignored without harm. With a VQA
    table the results it learns from are the answers (``vqa_answers``), whose latency includes
    the answer head's time as the table's does."""
    from edge_offload.msg import ActionResult, DetectionArray, VqaAnswer
    from offload_common.nodes.qos import RESULT_QOS

    lut = save_lut(tmp_path, accurate_bytes=1000, metric=metric)
    watcher = Watcher(rclpy_context)
    ResultType = {"action_results": ActionResult, "detections": DetectionArray, "vqa_answers": VqaAnswer}[topic]
    pub = watcher.node.create_publisher(ResultType, topic, RESULT_QOS)
    monitor = NodeProcess("link_monitor", "link_monitor", config_path("link_monitor.yaml"),
                          overrides={"lookup_tables": lut, "sla_kind": "latency", "sla_latency_ms": 100.0,
                                     "min_dwell_s": 0.5, "calibration_min_results": 5, "latency_quantile": 0.9})
    echo = NodeProcess("link_echo", "link_echo", config_path("link_echo.yaml"))

    def publish(config_id, total_ms, transmit_ms=1.0, n=1):
        publish_results(pub, ResultType, config_id, total_ms, n, transmit_ms)

    try:
        with ProcessGraph([monitor, echo], echo=False) as graph:
            assert watcher.wait_for(lambda m: m.config_id == "cnn3d/o2/noenc/k8" and m.link_up, 20), \
                graph.output("link_monitor")
            assert watcher.latest().predicted_latency_ms < 100
            publish("no/such/config", 50.0, n=3)
            publish("cnn3d/o2/noenc/k8", 10.0, transmit_ms=20.0, n=3)     # transmit > total: refused
            publish("cnn3d/o2/noenc/k8", 300.0, n=8)
            assert watcher.wait_for(lambda m: m.config_id == "cnn3d/o2/enc/k4", 10), graph.output("link_monitor")
            publish("cnn3d/o2/enc/k4", 40.0, n=8)
            assert watcher.wait_for(lambda m: m.config_id == "cnn3d/o2/enc/k4"
                                    and 35 < m.predicted_latency_ms < 50 and m.sla_feasible, 10)
            assert watcher.latest().predicted_latency_tail_ms >= watcher.latest().predicted_latency_ms
            assert graph.running("link_monitor")
            assert "not used for calibration" in graph.output("link_monitor")
    finally:
        watcher.close()


def test_results_that_waited_out_a_cut_do_not_teach_the_monitor(rclpy_context, tmp_path):
    """Results captured before a cut and delivered after it carry the cut's seconds. The monitor
    leaves them out of calibration, so after the restore it offloads the accurate configuration
    again (the 40 ms its results showed before the cut), instead of believing that configuration
    now takes seconds and never trying it again."""
    from edge_offload.msg import ActionResult
    from offload_common.nodes.qos import RESULT_QOS

    lut = save_lut(tmp_path, accurate_bytes=1000)
    watcher = Watcher(rclpy_context)
    pub = watcher.node.create_publisher(ActionResult, "action_results", RESULT_QOS)
    monitor = NodeProcess("link_monitor", "link_monitor", config_path("link_monitor.yaml"),
                          overrides={"lookup_tables": lut, "sla_kind": "latency", "sla_latency_ms": 100.0,
                                     "min_dwell_s": 0.5, "loss_timeout_s": 1.0, "calibration_min_results": 5,
                                     "latency_quantile": 0.9})
    echo = NodeProcess("link_echo", "link_echo", config_path("link_echo.yaml"))

    def publish(total_ms, n, stamp):
        publish_results(pub, ActionResult, "cnn3d/o2/noenc/k8", total_ms, n, stamp=stamp)

    try:
        with ProcessGraph([monitor, echo], echo=False) as graph:
            assert watcher.wait_for(lambda m: m.config_id == "cnn3d/o2/noenc/k8" and m.link_up, 20), \
                graph.output("link_monitor")
            publish(40.0, 8, watcher.node.get_clock().now().to_msg())
            before_cut = watcher.node.get_clock().now().to_msg()
            graph.stop_one("link_echo")
            assert watcher.wait_for(lambda m: m.config_id == "edge_only" and not m.link_up, 10)
            publish(5000.0, 8, before_cut)                 # in flight across the cut
            graph.start_one("link_echo")
            assert watcher.wait_for(lambda m: m.link_up and m.config_id != "edge_only", 15), graph.output("link_monitor")
            time.sleep(1.0)                                 # a few decisions after the restore
            m = watcher.latest()
            assert m.config_id == "cnn3d/o2/noenc/k8" and m.predicted_latency_tail_ms < 100, graph.output("link_monitor")
            assert "in flight across a link outage" in graph.output("link_monitor")
    finally:
        watcher.close()


def test_rate_reports_receipts_as_liveness_interface_goodput_and_diagnostics(rclpy_context, tmp_path):
    """README: an external rate report (link_rate_report, Mbit/s) wins while fresh; payload
    receipts alone keep the link up (probes off here) and their absence is a lost link after
    loss_timeout_s; interface counters give the goodput; /diagnostics carries the documented keys."""
    from builtin_interfaces.msg import Time
    from std_msgs.msg import Float32

    from edge_offload.msg import LinkReceipt
    from offload_common.nodes.qos import RESULT_QOS

    lut = save_lut(tmp_path, accurate_bytes=100_000)                # 800 kbit: fits 100 ms only above ~10 Mbit/s
    watcher = Watcher(rclpy_context)
    rate_pub = watcher.node.create_publisher(Float32, "link_rate_report", 10)
    receipt_pub = watcher.node.create_publisher(LinkReceipt, "link_receipts", RESULT_QOS)
    monitor = NodeProcess("link_monitor", "link_monitor", config_path("link_monitor.yaml"),
                          overrides={"lookup_tables": lut, "sla_kind": "latency", "sla_latency_ms": 100.0,
                                     "min_dwell_s": 0.5, "loss_timeout_s": 1.0, "probe_period_s": 0.0,
                                     "interface": "lo", "calibrate_from_results": False})
    sending = threading.Event()
    seq = [0]

    def feed():                       # a server's payload receipts and a modem's rate reports, 5 Hz
        while not stop.is_set():
            if sending.is_set():
                ns = watcher.node.get_clock().now().nanoseconds
                t = Time(sec=ns // 10**9, nanosec=ns % 10**9)
                receipt_pub.publish(LinkReceipt(stream_id="var", seq=seq[0], config_id="cnn3d/o2/enc/k4", bytes=100,
                                                publish_stamp=t, receive_stamp=t, decoded_ok=True))
                seq[0] += 1
                rate_pub.publish(Float32(data=rate[0]))
            time.sleep(0.2)

    rate, stop = [50.0], threading.Event()
    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        with ProcessGraph([monitor], echo=False) as graph:
            sending.set()
            assert watcher.wait_for(lambda m: m.link_up and m.config_id == "cnn3d/o2/noenc/k8"
                                    and abs(m.bandwidth_mbps - 50.0) < 0.5, 20), graph.output("link_monitor")
            rate[0] = 2.0                                            # the modem reports a slow link
            assert watcher.wait_for(lambda m: m.config_id == "cnn3d/o2/enc/k4" and abs(m.bandwidth_mbps - 2.0) < 0.1,
                                    10), graph.output("link_monitor")
            def latest_diagnostics():
                return {kv.key: kv.value for d in watcher.diagnostics[-1:] for s in d.status for kv in s.values}

            deadline = time.monotonic() + 5                          # published at 1 Hz
            while time.monotonic() < deadline and latest_diagnostics().get("config_id") != "cnn3d/o2/enc/k4":
                time.sleep(0.1)
            diag = latest_diagnostics()
            assert {"config_id", "bandwidth_mbps", "bandwidth_source", "delay_ms", "goodput_mbps",
                    "predicted_latency_ms", "predicted_latency_tail_ms", "calibration_results", "switches",
                    "receipts", "sla", "predicted_accuracy", "results_across_outages",
                    "calibrations_forgotten"} <= set(diag)
            assert diag["bandwidth_source"] == "external" and diag["receipts"] == "0"   # probe receipts: none
            assert float(diag["goodput_mbps"]) >= 0.0                # read from lo's tx counter
            sending.clear()                                          # no receipts (and no probes): link lost
            t_stop = time.monotonic()
            t_down = watcher.wait_for(lambda m: not m.link_up and m.config_id == "edge_only", 10)
            assert t_down is not None and t_down - t_stop < 3.0, graph.output("link_monitor")
            sending.set()
            assert watcher.wait_for(lambda m: m.link_up and m.config_id != "edge_only", 10), graph.output("link_monitor")
            assert graph.running("link_monitor")
    finally:
        stop.set()
        feeder.join(2)
        watcher.close()
