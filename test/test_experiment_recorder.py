"""experiment_recorder records results of both streams in one format: ApproxBit's ActionResult
and How2Compress's DetectionArray (the number of people as the label; edge-only from the
configuration id), so one analysis scores either stream; VQA answers are recorded apart, as
``answer`` lines with the question, and scored instead of the results when asked."""
import json

import pytest

import rclpy  # noqa: E402


def test_recorder_writes_action_and_detection_results(tmp_path):
    from rclpy.parameter import Parameter

    from edge_offload.msg import ActionResult, Detection, DetectionArray, VqaAnswer
    from offload_common.experiments.analysis import load_run, summarize
    from offload_common.nodes.experiment_recorder import ExperimentRecorderNode

    out = tmp_path / "record.jsonl"
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    try:
        node = ExperimentRecorderNode(context=ctx, parameter_overrides=[Parameter("output", value=str(out))])
        action = ActionResult(seq=3, config_id="cnn3d/o2/enc/k4", label="left", score=0.9)
        action.header.stamp.sec, action.latency.total_ms = 10, 25.0
        dets = DetectionArray(seq=7, config_id="h2c/base41", detections=[
            Detection(label="person", score=0.8), Detection(label="person", score=0.6)])
        dets.header.stamp.sec, dets.latency.total_ms, dets.latency.payload_bytes = 11, 80.0, 1200
        fallback = DetectionArray(seq=8, config_id="edge_only")
        fallback.header.stamp.sec, fallback.latency.total_ms = 12, 40.0
        answer = VqaAnswer(seq=3, config_id="cnn3d/o2/enc/k4", question="which way does the object move?",
                           answer="left", score=0.7)
        answer.header.stamp.sec, answer.latency.total_ms = 10, 27.0
        for cb, msg in ((node._on_result, action), (node._on_answer, answer), (node._on_detections, dets),
                        (node._on_detections, fallback)):
            cb(msg)
        node.destroy_node()
    finally:
        rclpy.shutdown(context=ctx)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["type"] for r in rows] == ["result", "answer", "result", "result"]
    answer_row = rows.pop(1)
    assert (answer_row["label"], answer_row["question"], answer_row["total_ms"]) == (
        "left", "which way does the object move?", 27.0)
    assert [(r["config_id"], r["label"], r["edge_only"]) for r in rows] == [
        ("cnn3d/o2/enc/k4", "left", False), ("h2c/base41", "2", False), ("edge_only", "0", True)]
    assert rows[1]["score"] == pytest.approx(0.8) and rows[1]["payload_bytes"] == 1200
    assert [r["stamp_ns"] for r in rows] == [10_000_000_000, 11_000_000_000, 12_000_000_000]
    summary = summarize(load_run(str(out), None))
    assert summary["results"] == 3 and summary["duplicate_results"] == 0
    assert summary["clip_aligned_fraction"] is None          # no ground truth for detections
    answers = load_run(str(out), None, scored="answer")
    assert [(r["seq"], r["label"]) for r in answers.results] == [(3, "left")]


def test_recorder_plays_its_sla_schedule_on_the_monitor(rclpy_context, tmp_path, capfd):
    """README: the recorder applies its SLA schedule: at each scheduled time it sets the monitor's
    sla_kind and bound through the monitor's parameter service, and records whether the monitor
    accepted it (a refused one is recorded as refused)."""
    import threading
    import time

    from rcl_interfaces.msg import SetParametersResult
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.parameter import Parameter

    from offload_common.nodes.experiment_recorder import ExperimentRecorderNode

    monitor = rclpy.create_node("fake_monitor", context=rclpy_context)
    monitor.declare_parameter("sla_kind", "latency")
    monitor.declare_parameter("sla_latency_ms", 300.0)
    monitor.declare_parameter("sla_accuracy", 0.9)
    seen = []

    def on_set(params):
        seen.extend((p.name, p.value) for p in params)
        bad = any(p.name == "sla_accuracy" and not 0 <= p.value <= 1 for p in params)
        return SetParametersResult(successful=not bad, reason="accuracy must be in [0, 1]" if bad else "")

    monitor.add_on_set_parameters_callback(on_set)
    out = tmp_path / "record.jsonl"
    recorder = ExperimentRecorderNode(context=rclpy_context, parameter_overrides=[
        Parameter("output", value=str(out)), Parameter("monitor_node", value="fake_monitor"),
        Parameter("sla_schedule", value="0.3:latency:150,0.8:accuracy:0.95,1.2:accuracy:1.5"),
        Parameter("start_unix_s", value=time.time())])
    ex = MultiThreadedExecutor(context=rclpy_context)
    ex.add_node(monitor)
    ex.add_node(recorder)
    threading.Thread(target=ex.spin, daemon=True).start()
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and recorder.counts["sla"] < 3:
            time.sleep(0.05)
        kind, latency, accuracy = (monitor.get_parameter(n).value for n in ("sla_kind", "sla_latency_ms",
                                                                            "sla_accuracy"))
    finally:
        ex.shutdown()
        recorder.destroy_node()
        monitor.destroy_node()
    assert seen == [("sla_kind", "latency"), ("sla_latency_ms", 150.0), ("sla_kind", "accuracy"),
                    ("sla_accuracy", 0.95), ("sla_kind", "accuracy"), ("sla_accuracy", 1.5)]
    assert (kind, latency, accuracy) == ("accuracy", 150.0, 0.95)          # the refused bound was not taken
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    slas = [(r["t_s"], r["kind"], r["value"], r["accepted"]) for r in rows if "accepted" in r]
    assert slas == [(0.3, "latency", 150.0, True), (0.8, "accuracy", 0.95, True), (1.2, "accuracy", 1.5, False)]
    err = capfd.readouterr().err                  # the refusal is logged as an error, the others as info
    assert "SLA at 0.3 s: latency 150 accepted by fake_monitor" in err
    assert "SLA at 1.2 s: accuracy 1.5 REFUSED by fake_monitor" in err
