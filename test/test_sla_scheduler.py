"""sla_scheduler plays its schedule on the monitor through the standard set_parameters service,
at the scheduled times, and logs whether the monitor accepted each change (a refused bound is
not taken and is logged as an error)."""
import threading
import time

import rclpy  # noqa: E402


def test_scheduler_plays_its_sla_schedule_on_the_monitor(rclpy_context, capfd):
    from rcl_interfaces.msg import SetParametersResult
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.parameter import Parameter

    from offload_common.nodes.sla_scheduler import SlaSchedulerNode

    monitor = rclpy.create_node("fake_monitor", context=rclpy_context)
    monitor.declare_parameter("sla_kind", "latency")
    monitor.declare_parameter("sla_latency_ms", 300.0)
    monitor.declare_parameter("sla_accuracy", 0.9)
    seen = []

    def on_set(params):
        seen.extend((p.name, p.value, time.time()) for p in params)
        bad = any(p.name == "sla_accuracy" and not 0 <= p.value <= 1 for p in params)
        return SetParametersResult(successful=not bad, reason="accuracy must be in [0, 1]" if bad else "")

    monitor.add_on_set_parameters_callback(on_set)
    t0 = time.time()
    scheduler = SlaSchedulerNode(context=rclpy_context, parameter_overrides=[
        Parameter("monitor_node", value="fake_monitor"),
        Parameter("sla_schedule", value="0.3:latency:150,0.8:accuracy:0.95,1.2:accuracy:1.5"),
        Parameter("start_unix_s", value=t0)])
    ex = MultiThreadedExecutor(context=rclpy_context)
    ex.add_node(monitor)
    ex.add_node(scheduler)
    threading.Thread(target=ex.spin, daemon=True).start()
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and len(scheduler.answers) < 3:
            time.sleep(0.05)
        kind, latency, accuracy = (monitor.get_parameter(n).value for n in ("sla_kind", "sla_latency_ms",
                                                                            "sla_accuracy"))
    finally:
        ex.shutdown()
        scheduler.destroy_node()
        monitor.destroy_node()
    assert [(n, v) for n, v, _ in seen] == [("sla_kind", "latency"), ("sla_latency_ms", 150.0), ("sla_kind", "accuracy"),
                                            ("sla_accuracy", 0.95), ("sla_kind", "accuracy"), ("sla_accuracy", 1.5)]
    assert seen[0][2] - t0 >= 0.3 and seen[2][2] - t0 >= 0.8 and seen[4][2] - t0 >= 1.2     # not before their time
    assert (kind, latency, accuracy) == ("accuracy", 150.0, 0.95)          # the refused bound was not taken
    assert scheduler.answers == [(0.3, "latency", 150.0, True), (0.8, "accuracy", 0.95, True),
                                 (1.2, "accuracy", 1.5, False)]
    err = capfd.readouterr().err                  # the refusal is logged as an error, the others as info
    assert "SLA at 0.3 s: latency 150 accepted by fake_monitor" in err
    assert "SLA at 1.2 s: accuracy 1.5 REFUSED by fake_monitor" in err
