"""offload_recorder as a process (its console script, real DDS): it records what the nodes
publish, results of both streams and VQA answers in one record format for the analysis, the
monitor's latched decision, and the payloads; stopped with Ctrl-C the bag is closed (metadata.yaml)
and offload_report makes its report; killed with SIGKILL it still leaves everything received
before its last flush readable."""
import json
import os
import signal
import subprocess
import time

import pytest

import rclpy  # noqa: E402

from edge_offload.msg import ActionResult, BinaryFeatures, Detection, DetectionArray, OffloadConfig, VqaAnswer
from offload_common.nodes.qos import DECISION_QOS, RESULT_QOS, payload_qos
from offload_common.recording.bag_reader import read_recording
from offload_common.recording.records import load_records
from offload_common.recording.report import topic_counts

S = 1_000_000_000


def decoded_by_mcap(folder) -> dict:
    """Messages per topic as the independent reader (mcap + mcap_ros2's decoder) decodes them,
    every message of every split."""
    from collections import Counter

    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    counts = Counter()
    for path in sorted(folder.glob("split_*/*.mcap")):
        with open(path, "rb") as f:
            for _, channel, _, msg in make_reader(f, decoder_factories=[DecoderFactory()]).iter_decoded_messages():
                assert msg is not None
                counts[channel.topic] += 1
    return dict(counts)


def start_recorder(out, *params):
    args = ["offload_recorder", "--ros-args", "-p", f"output:={out}", "-p", "flush_period_s:=0.2"]
    for p in params:
        args += ["-p", p]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def publishers(node):
    return {"action_results": node.create_publisher(ActionResult, "action_results", RESULT_QOS),
            "detections": node.create_publisher(DetectionArray, "detections", RESULT_QOS),
            "vqa_answers": node.create_publisher(VqaAnswer, "vqa_answers", RESULT_QOS),
            "offload_config": node.create_publisher(OffloadConfig, "offload_config", DECISION_QOS),
            "binary_features": node.create_publisher(BinaryFeatures, "binary_features", payload_qos(30))}


def wait_matched(pubs, proc, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(p.get_subscription_count() >= 1 for p in pubs.values()):
            time.sleep(1.0)             # the writer has matched; give the reader side time to match it too
            return
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.1)
    raise AssertionError("offload_recorder never subscribed")


def test_recorder_records_both_streams_answers_decisions_and_payloads(rclpy_context, tmp_path):
    out = tmp_path / "rec"
    node = rclpy.create_node("publisher", context=rclpy_context)
    decision = OffloadConfig(decision_seq=1, config_id="cnn3d/o2/enc/k4", link_up=True, bandwidth_mbps=3.0,
                             sla_kind="latency", sla_latency_ms=200.0, reason="meets the SLA")
    pubs = publishers(node)
    pubs["offload_config"].publish(decision)           # latched: recorded although published first
    proc = start_recorder(out, "payload_budget_bytes:=5000")
    try:
        wait_matched(pubs, proc)
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
        for topic, msg in (("action_results", action), ("vqa_answers", answer), ("detections", dets),
                           ("detections", fallback)):
            pubs[topic].publish(msg)
            time.sleep(0.05)
        for i in range(10):                            # 10 payloads of ~1 kB against a 5000-byte budget
            feat = BinaryFeatures(data=bytes(1000))
            feat.meta.seq = i
            pubs["binary_features"].publish(feat)
            time.sleep(0.02)
        time.sleep(1.0)
    finally:
        proc.send_signal(signal.SIGINT)
        log = proc.communicate(timeout=30)[0]
        node.destroy_node()
    assert proc.returncode == 0, log
    assert list(out.glob("split_*/metadata.yaml")), log
    records = load_records(str(out))
    results = records["result"]
    assert [(r["config_id"], r["label"], r["edge_only"]) for r in results] == [
        ("cnn3d/o2/enc/k4", "left", False), ("h2c/base41", "2", False), ("edge_only", "0", True)]
    assert results[1]["score"] == pytest.approx(0.8) and results[1]["payload_bytes"] == 1200
    assert [r["stamp_ns"] for r in results] == [10 * S, 11 * S, 12 * S]
    (a,) = records["answer"]
    assert (a["label"], a["question"], a["total_ms"]) == ("left", "which way does the object move?", 27.0)
    (d,) = records["decision"]
    assert (d["config_id"], d["reason"], d["bandwidth_mbps"]) == ("cnn3d/o2/enc/k4", "meets the SLA", 3.0)
    payloads = [m.msg.meta.seq for m in read_recording(str(out), topics=["/binary_features"])]
    assert payloads == [0, 1, 2, 3] and "payload budget of 5000 B reached" in log
    assert decoded_by_mcap(out) == {t: n for t, n in json.loads(json.dumps(topic_counts(out))).items()}
    report = subprocess.run(["offload_report", str(out)], capture_output=True, text=True, timeout=120)
    assert report.returncode == 0, report.stderr
    summary = json.loads((out / "report" / "summary.json").read_text())
    assert summary["results"] == 3 and summary["topics"]["/binary_features"] == 4
    assert os.path.getsize(out / "report" / "report.html") > 50_000


def test_a_killed_recorder_leaves_what_it_flushed_readable(rclpy_context, tmp_path):
    out = tmp_path / "rec"
    node = rclpy.create_node("publisher", context=rclpy_context)
    pubs = publishers(node)
    proc = start_recorder(out)
    try:
        wait_matched(pubs, proc)
        for i in range(30):
            pubs["action_results"].publish(ActionResult(seq=i, label="left"))
            time.sleep(0.01)
        time.sleep(1.0)                                # > flush_period_s: all of it is on disk
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        node.destroy_node()
    assert not list(out.glob("split_*/metadata.yaml"))  # no clean close
    assert [r["seq"] for r in load_records(str(out))["result"]] == list(range(30))


def test_unknown_topics_stop_the_recorder_with_one_line(tmp_path):
    proc = subprocess.run(["offload_recorder", "--ros-args", "-p", f"output:={tmp_path / 'r'}",
                           "-p", "topics:=[action_results, camera/image_raw]"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "[FATAL] ValueError: topics ['camera/image_raw'] cannot be recorded" in proc.stderr
    assert "Traceback" not in proc.stderr
