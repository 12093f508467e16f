"""A recording's messages as the plain records the analysis scores (``experiments/analysis.py``):
one dict per result, VQA answer, monitor decision and link receipt, with ``recv_ns`` the time the
recorder received it. The converters read fields by name, so they take the decoded messages of
any reader (rosbags, mcap_ros2, rclpy) alike."""
from __future__ import annotations

from collections import defaultdict
from typing import Dict, List, Optional, Sequence

from offload_common.recording.bag_reader import read_recording

#: topic base name -> record type
RECORD_TOPICS = {"action_results": "result", "detections": "result", "vqa_answers": "answer",
                 "offload_config": "decision", "link_receipts": "receipt"}


def stamp_ns(stamp) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def result_record(topic: str, m, recv_ns: int) -> dict:
    """ActionResult / VqaAnswer / DetectionArray (the number of people as its label; edge-only from
    the configuration id) in one format."""
    base = topic.rsplit("/", 1)[-1]
    if base == "detections":
        edge_only, label = m.config_id == "edge_only", str(len(m.detections))
        score = max((float(d.score) for d in m.detections), default=0.0)
    else:
        edge_only, label, score = bool(m.edge_only), (m.answer if base == "vqa_answers" else m.label), float(m.score)
    lat = m.latency
    record = {"recv_ns": int(recv_ns), "stamp_ns": stamp_ns(m.header.stamp), "seq": int(m.seq),
              "config_id": m.config_id, "edge_only": edge_only, "label": label, "score": round(score, 4),
              "total_ms": float(lat.total_ms), "edge_ms": float(lat.edge_model_ms + lat.edge_encode_ms),
              "transmit_ms": float(lat.transmit_ms), "server_ms": float(lat.decode_ms + lat.server_model_ms),
              "queue_ms": float(lat.edge_queue_ms), "payload_bytes": int(lat.payload_bytes)}
    if base == "vqa_answers":
        record["question"] = m.question
    return record


def decision_record(m, recv_ns: int) -> dict:
    return {"recv_ns": int(recv_ns), "stamp_ns": stamp_ns(m.header.stamp), "decision_seq": int(m.decision_seq),
            "config_id": m.config_id, "method": m.method, "reason": m.reason, "link_up": bool(m.link_up),
            "bandwidth_mbps": float(m.bandwidth_mbps), "link_delay_ms": float(m.link_delay_ms),
            "predicted_latency_ms": float(m.predicted_latency_ms),
            "predicted_latency_tail_ms": float(m.predicted_latency_tail_ms),
            "predicted_accuracy": float(m.predicted_accuracy), "sla_kind": m.sla_kind,
            "sla_latency_ms": float(m.sla_latency_ms), "sla_accuracy": float(m.sla_accuracy),
            "sla_feasible": bool(m.sla_feasible)}


def receipt_record(m, recv_ns: int) -> dict:
    return {"recv_ns": int(recv_ns), "stream_id": m.stream_id, "seq": int(m.seq), "config_id": m.config_id,
            "size_bytes": int(m.bytes), "ok": bool(m.decoded_ok), "publish_ns": stamp_ns(m.publish_stamp),
            "receive_ns": stamp_ns(m.receive_stamp)}


def load_records(path: str, namespace: Optional[str] = None) -> Dict[str, List[dict]]:
    """Records by type (``result``, ``answer``, ``decision``, ``receipt``) from a recording;
    ``namespace`` picks one robot's topics when the recording holds several."""
    out: Dict[str, List[dict]] = defaultdict(list)
    topics = _topics(path, namespace)
    for rec in read_recording(path, topics=topics):
        kind = RECORD_TOPICS[rec.topic.rsplit("/", 1)[-1]]
        if kind in ("result", "answer"):
            out[kind].append(result_record(rec.topic, rec.msg, rec.log_time_ns))
        elif kind == "decision":
            out[kind].append(decision_record(rec.msg, rec.log_time_ns))
        else:
            out[kind].append(receipt_record(rec.msg, rec.log_time_ns))
    for kind in ("result", "answer", "decision", "receipt"):
        out.setdefault(kind, [])
    return dict(out)


def _topics(path: str, namespace: Optional[str]) -> Sequence[str]:
    from offload_common.recording.bag_reader import topic_types

    names = [t for t in topic_types(path) if t.rsplit("/", 1)[-1] in RECORD_TOPICS]
    if namespace is not None:
        names = [t for t in names if t.rsplit("/", 1)[0] == namespace.rstrip("/")]
    return names
