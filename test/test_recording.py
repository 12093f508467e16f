"""Field recordings without DDS: messages written through SplitBagWriter (what offload_recorder
does with what it receives) read back by rosbags and by the independent mcap / mcap_ros2 reader;
a crash loses only what was not flushed; splits and the payload budget; and a run scored from the
bag gives the same summary as the adaptive experiments' old JSON-lines records of the same
messages. The report's HTML embeds every figure."""
import base64
import json
import os
import re
import shutil

import pytest

from rclpy.serialization import serialize_message  # noqa: E402

from edge_offload.msg import ActionResult, BinaryFeatures, DetectionArray, Detection, LinkReceipt, OffloadConfig
from offload_common.experiments.analysis import load_run, summarize
from offload_common.recording.bag_reader import read_recording, topic_types
from offload_common.recording.bag_writer import SplitBagWriter
from offload_common.recording.message_types import typestore
from test_adaptive_analysis import S, write_run

TOPICS = {"/action_results": "edge_offload/msg/ActionResult", "/detections": "edge_offload/msg/DetectionArray",
          "/offload_config": "edge_offload/msg/OffloadConfig", "/link_receipts": "edge_offload/msg/LinkReceipt",
          "/binary_features": "edge_offload/msg/BinaryFeatures"}


def new_writer(folder, **kw):
    w = SplitBagWriter(str(folder), typestore(), **kw)
    for topic, msgtype in TOPICS.items():
        w.add_topic(topic, msgtype, payload=topic == "/binary_features")
    return w


def set_stamp(stamp, ns):
    stamp.sec, stamp.nanosec = ns // S, ns % S


def result_msg(r):
    m = ActionResult(seq=r["seq"], config_id=r["config_id"], edge_only=r["edge_only"], label=r["label"],
                     score=float(r["score"]))
    set_stamp(m.header.stamp, r["stamp_ns"])
    lat = m.latency
    lat.total_ms, lat.edge_model_ms, lat.transmit_ms = float(r["total_ms"]), float(r["edge_ms"]), float(r["transmit_ms"])
    lat.server_model_ms, lat.edge_queue_ms, lat.payload_bytes = float(r["server_ms"]), float(r["queue_ms"]), r["payload_bytes"]
    return m


def decision_msg(d):
    m = OffloadConfig(decision_seq=d["decision_seq"], config_id=d["config_id"], method=d["method"], reason=d["reason"],
                      link_up=d["link_up"], bandwidth_mbps=d["bandwidth_mbps"], link_delay_ms=d["link_delay_ms"],
                      predicted_latency_ms=d["predicted_latency_ms"], predicted_accuracy=d["predicted_accuracy"],
                      sla_kind=d["sla_kind"], sla_latency_ms=d["sla_latency_ms"], sla_accuracy=d["sla_accuracy"],
                      sla_feasible=d["sla_feasible"])
    set_stamp(m.header.stamp, d["stamp_ns"])
    return m


def record_scenario(tmp_path, folder):
    """The analysis test's run, as messages in a recording at the records' receive times."""
    rec, truth = write_run(tmp_path)
    w = new_writer(folder)
    for r in map(json.loads, open(rec).read().splitlines()):
        topic, msg = ("/offload_config", decision_msg(r)) if r["type"] == "decision" else ("/action_results", result_msg(r))
        w.write(topic, serialize_message(msg), r["recv_ns"])
    w.close()
    return rec, truth


def test_a_recording_scores_exactly_as_the_records_it_was_made_of(tmp_path):
    bag = tmp_path / "rec"
    rec, truth = record_scenario(tmp_path, bag)
    rates, events = [(90.0, 3.0), (200.0, 3.0)], [(180.0, "cut"), (183.0, "restore")]
    from_bag = summarize(load_run(str(bag), truth, rates, events, t0=100.0), levels=(3.0, 50.0))
    from_lines = summarize(load_run(rec, truth, rates, events, t0=100.0), levels=(3.0, 50.0))
    assert from_bag == from_lines
    assert from_bag["results"] == 5 and from_bag["switches"] == 3 and from_bag["latency_sla"]["violations"] == 1


def test_two_independent_readers_decode_every_message(tmp_path):
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    w = new_writer(tmp_path / "rec")
    d = DetectionArray(seq=4, config_id="h2c/base41", detections=[Detection(label="person", score=0.75)])
    w.write("/detections", serialize_message(d), 5 * S)
    w.write("/link_receipts", serialize_message(LinkReceipt(stream_id="cam", seq=4, bytes=1234, decoded_ok=True)), 6 * S)
    feat = BinaryFeatures(data=bytes(range(200)), shape=[4, 2, 5, 5])
    feat.meta.seq = 4
    w.write("/binary_features", serialize_message(feat), 7 * S)
    w.close()
    ours = list(read_recording(str(tmp_path / "rec")))
    assert [m.topic for m in ours] == ["/detections", "/link_receipts", "/binary_features"]
    (mcap_file,) = list((tmp_path / "rec").glob("split_*/*.mcap"))
    with open(mcap_file, "rb") as f:
        theirs = list(make_reader(f, decoder_factories=[DecoderFactory()]).iter_decoded_messages())
    assert len(theirs) == 3
    by_topic = {ch.topic: (sch.name, msg) for sch, ch, _, msg in theirs}
    assert by_topic["/detections"][0] == "edge_offload/msg/DetectionArray"
    assert by_topic["/detections"][1].detections[0].score == pytest.approx(0.75)
    assert by_topic["/link_receipts"][1].bytes == 1234 and ours[1].msg.bytes == 1234
    assert bytes(by_topic["/binary_features"][1].data) == bytes(range(200)) == bytes(ours[2].msg.data)
    assert list(ours[2].msg.shape) == [4, 2, 5, 5] and ours[2].msg.meta.seq == 4


def test_a_crash_loses_only_what_was_not_flushed(tmp_path):
    w = new_writer(tmp_path / "rec")
    for i in range(40):
        w.write("/action_results", serialize_message(ActionResult(seq=i, label="left")), (10 + i) * S)
    w.flush()
    for i in range(40, 45):                       # still in the chunk being filled when the power goes
        w.write("/action_results", serialize_message(ActionResult(seq=i, label="left")), (10 + i) * S)
    crashed = tmp_path / "crashed"
    shutil.copytree(tmp_path / "rec", crashed)    # what is on disk at this moment
    assert not list(crashed.glob("split_*/metadata.yaml"))
    seqs = [m.msg.seq for m in read_recording(str(crashed))]
    assert seqs == list(range(40))
    assert topic_types(str(crashed)) == {"/action_results": "edge_offload/msg/ActionResult"}
    w.close()
    assert [m.msg.seq for m in read_recording(str(tmp_path / "rec"))] == list(range(45))


def test_splits_by_size_and_duration_and_the_payload_budget(tmp_path):
    w = new_writer(tmp_path / "rec", split_bytes=1 << 16, split_duration_s=5.0, payload_budget_bytes=30_000)
    for i in range(60):                            # 60 payloads of ~1.1 kB against a 30 kB budget
        feat = BinaryFeatures(data=bytes(1000))
        feat.meta.seq = i
        w.write("/binary_features", serialize_message(feat), (100 + i) * S // 10)
    stats = w.close()
    kept = [m.msg.meta.seq for m in read_recording(str(tmp_path / "rec"))]
    assert stats.payloads_over_budget == 60 - len(kept) > 0 and kept == list(range(len(kept)))
    assert stats.payload_bytes <= 30_000
    # 6 s of messages at 0.1 s: a new split every 5 s of log time -> 2 splits
    w = new_writer(tmp_path / "rec2", split_duration_s=5.0)
    for i in range(60):
        w.write("/action_results", serialize_message(ActionResult(seq=i)), (100 + i) * S // 10)
    assert w.close().splits == 2
    assert [m.msg.seq for m in read_recording(str(tmp_path / "rec2"))] == list(range(60))
    w = new_writer(tmp_path / "rec3", split_bytes=1 << 16)
    for i in range(100):
        w.write("/binary_features", serialize_message(BinaryFeatures(data=bytes(2000))), (100 + i) * S)
    assert w.close().splits == 4                   # ~200 kB in splits of 64 KiB
    with pytest.raises(FileExistsError):
        new_writer(tmp_path / "rec3")


def test_the_report_embeds_its_figures_and_finds_outages_and_switch_reasons(tmp_path):
    from offload_common.recording.report import ExperimentInfo, build_report

    bag = tmp_path / "rec"
    _, truth = record_scenario(tmp_path, bag)
    info = ExperimentInfo(t0=100.0, rates=[[90.0, 3.0], [200.0, 3.0]], events=[[180.0, "cut"], [183.0, "restore"]],
                          levels=[3.0, 50.0])
    summary = build_report(str(bag), str(tmp_path / "out"), truth, info)
    page = (tmp_path / "out" / "report.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 4 and all(base64.b64decode(b)[:4] == b"\x89PNG" and len(b) > 10_000 for b in images)
    saved = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert saved["results"] == summary["results"] == 5
    # the scenario's monitor saw the link down at 181 s and up again at 185 s, deciding edge-only at once
    (outage,) = summary["outages"]
    assert (outage["down_at_s"], outage["up_at_s"], outage["edge_only_after_s"]) == (81.0, 85.0, 0.0)
    assert outage["offloading_again_after_s"] == 0.0
    assert [s["config_id"] for s in summary["switch_reasons"]] == ["X", "Y", "edge_only", "Y"]
    x = next(p for p in summary["per_configuration"] if p["config_id"] == "X")
    assert x["results"] == 3 and x["latency_p50_ms"] == 45.0 and x["accuracy"] == 1.0
    assert summary["link_cut"][0]["fallback_s"] == pytest.approx(1.0)
    assert "Switches and their reasons" in page and "edge_only" in page


def test_outages_time_the_fallback_and_the_recovery_from_the_decisions():
    from offload_common.experiments.analysis import Run
    from offload_common.recording.report import outages

    def dec(t, cid, up):
        return {"recv_ns": int(t * S), "config_id": cid, "link_up": up}

    run = Run(results=[], decisions=[dec(10, "A", True), dec(20, "A", False), dec(21.5, "edge_only", False),
                                     dec(30, "edge_only", True), dec(33, "B", True), dec(50, "B", False)],
              slas=[], truth={}, t0=10.0)
    first, second = outages(run)
    assert first == {"down_at_s": 10.0, "up_at_s": 20.0, "down_for_s": 10.0, "edge_only_after_s": 1.5,
                     "offloading_again_after_s": 3.0}
    assert second["down_at_s"] == 40.0 and second["up_at_s"] is None and second["edge_only_after_s"] is None


def test_the_link_trace_of_a_recording_replays_its_rate_and_its_outage(tmp_path):
    from offload_common.experiments.adaptive import load_trace_with_cuts
    from offload_common.recording.replay import write_link_trace

    bag = tmp_path / "rec"
    w = new_writer(bag)
    for t, rate, up in ((99, 1.0, False), (100, 3.0, True), (102, 3.0, True), (105, 0.8, True), (110, 0.8, False), (114, 0.0, False),
                        (118, 2.5, True)):
        m = OffloadConfig(config_id="X", bandwidth_mbps=rate, link_up=up)
        w.write("/offload_config", serialize_message(m), t * S)
    w.close()
    csv_path = tmp_path / "link.csv"
    assert write_link_trace(str(bag), str(csv_path)) == 4     # unchanged rows and the 0-rate estimate dropped
    trace, cuts = load_trace_with_cuts(str(csv_path))
    assert trace.steps == [(0.0, 3.0), (5.0, 0.8), (10.0, 0.8), (18.0, 2.5)]
    assert cuts == [(10.0, 8.0)]


def test_payload_bitrate_counts_the_servers_receipts_not_the_probes(tmp_path):
    from offload_common.recording.records import load_records
    from offload_common.recording.report import payload_bitrate, payload_receipts

    w = new_writer(tmp_path / "rec")
    for i in range(20):                  # 10 payloads of 1250 B per second for 2 s, and a 100-B probe each time
        w.write("/link_receipts", serialize_message(LinkReceipt(stream_id="cam", seq=i, config_id="X", bytes=1250,
                                                                decoded_ok=i != 5)), 100 * S + i * S // 10)
        w.write("/link_receipts", serialize_message(LinkReceipt(stream_id="probe", seq=i, config_id="probe",
                                                                bytes=100)), 100 * S + i * S // 10 + 1)
    w.close()
    receipts = payload_receipts(load_records(str(tmp_path / "rec"))["receipt"])
    assert len(receipts) == 20 and sum(not r["ok"] for r in receipts) == 1
    rate = payload_bitrate(receipts)
    assert rate["mean_kbps"] == pytest.approx(100.0) and rate["max_kbps"] == pytest.approx(100.0)
