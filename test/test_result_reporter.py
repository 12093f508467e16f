"""result_reporter as a real process: what it logs for action results (label, score, seq,
configuration, the latest answer about the same clip), for detections, the payload size,
bitrate and latency percentiles of its window, and its exit code with expected_results (0 after
that many, 1 at the timeout)."""
import re
import threading
import time

import rclpy

from offload_common.process_graph import NodeProcess, ProcessGraph, config_path


def test_reporter_logs_results_answers_and_detections_and_exits_when_done(rclpy_context):
    from rclpy.executors import SingleThreadedExecutor

    from edge_offload.msg import ActionResult, Detection, DetectionArray, VqaAnswer
    from offload_common.nodes.qos import RESULT_QOS

    node = rclpy.create_node("reporter_feed", context=rclpy_context)
    results = node.create_publisher(ActionResult, "action_results", RESULT_QOS)
    answers = node.create_publisher(VqaAnswer, "vqa_answers", RESULT_QOS)
    dets = node.create_publisher(DetectionArray, "detections", RESULT_QOS)
    ex = SingleThreadedExecutor(context=rclpy_context)
    ex.add_node(node)
    threading.Thread(target=ex.spin, daemon=True).start()
    reporter = NodeProcess("result_reporter", "result_reporter", config_path("result_reporter.yaml"),
                           overrides={"expected_results": 10, "timeout_s": 60.0, "report_every": 5})
    try:
        with ProcessGraph([reporter], echo=False) as graph:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and results.get_subscription_count() < 1:
                time.sleep(0.05)
            time.sleep(0.5)
            for seq in range(5):
                answers.publish(VqaAnswer(stream_id="var", seq=seq, question="which way does the object move?",
                                          answer="left", score=0.75))
                r = ActionResult(stream_id="var", seq=seq, config_id="cnn3d/o2/enc/k4", label="moving left",
                                 score=0.5)
                r.latency.payload_bytes, r.latency.total_ms = 256, 20.0 + seq
                results.publish(r)
                time.sleep(0.1)
            for seq in range(5):
                d = DetectionArray(stream_id="det", seq=seq, config_id="uniform/qp30", detector="ssdlite",
                                   detections=[Detection(score=0.9), Detection(score=0.6)])
                d.latency.payload_bytes, d.latency.total_ms = 5000, 60.0
                dets.publish(d)
                time.sleep(0.1)
            code = graph.wait("result_reporter", timeout=30)
            out = graph.output("result_reporter")
    finally:
        ex.shutdown()
        node.destroy_node()
    assert code == 0, out
    # answers and results travel on two topics in either order: the answer shown is the latest one
    # that had arrived, about this clip or the one before
    assert re.search(r"5 results; last: 'moving left' \(0\.50\) seq 4 \[cnn3d/o2/enc/k4\]; asked 'which way does "
                     r"the object move\?' about seq [34], 'moving left': 'left' \(0\.75\); payload 256 B", out), out
    assert "latency p50 22 ms" in out                                  # 20..24 ms
    assert "10 results; last: 2 ssdlite detections (best 0.90) seq 4 [uniform/qp30]; payload 5000 B" in out
    kbps = [float(k) for k in re.findall(r"B, (\d+) kbit/s", out)]
    assert len(kbps) == 2 and 15 <= kbps[0] <= 30 and 300 <= kbps[1] <= 500   # 256 B / 5000 B every ~0.1 s
    assert "received 10 results; done" in out


def test_reporter_gives_up_after_its_timeout():
    reporter = NodeProcess("result_reporter", "result_reporter", config_path("result_reporter.yaml"),
                           overrides={"expected_results": 3, "timeout_s": 2.0})
    with ProcessGraph([reporter], echo=False) as graph:
        code = graph.wait("result_reporter", timeout=30)
        out = graph.output("result_reporter")
    assert code == 1 and "timeout: 0 of 3 results" in out, out
