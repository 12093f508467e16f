"""Filling and reading the common parts of payload messages (PayloadHeader, LatencyBreakdown,
LinkReceipt), shared by the ApproxBit and How2Compress nodes."""
from __future__ import annotations

from builtin_interfaces.msg import Time

from offload_common.nodes.runner import stamp_to_ns


def fill_header(meta, *, stamp, frame_id: str, stream_id: str, seq: int, config_id: str, clock,
                queue_ms: float = 0.0, preprocess_ms: float = 0.0, model_ms: float = 0.0,
                encode_ms: float = 0.0) -> None:
    """Fill a PayloadHeader: capture stamp, ids, timings, publish stamp (now)."""
    meta.format_version = meta.FORMAT_VERSION
    meta.header.stamp = stamp
    meta.header.frame_id = frame_id
    meta.stream_id = stream_id
    meta.seq = seq
    meta.config_id = config_id
    meta.timings.queue_ms = float(queue_ms)
    meta.timings.preprocess_ms = float(preprocess_ms)
    meta.timings.model_ms = float(model_ms)
    meta.timings.encode_ms = float(encode_ms)
    meta.publish_stamp = clock.now().to_msg()


def fill_latency(latency, meta, *, receive_ns: int, now_ns: int, decode_ms: float, server_ms: float,
                 payload_bytes: int, server_queue_ms: float = 0.0, server_skipped: int = 0) -> None:
    """LatencyBreakdown of a result from its payload header and the server's timings."""
    latency.edge_queue_ms = meta.timings.queue_ms
    latency.edge_model_ms = meta.timings.model_ms
    latency.edge_encode_ms = meta.timings.encode_ms
    latency.transmit_ms = max(0.0, (receive_ns - stamp_to_ns(meta.publish_stamp)) / 1e6)
    latency.decode_ms = float(decode_ms)
    latency.server_model_ms = float(server_ms)
    latency.total_ms = max(0.0, (now_ns - stamp_to_ns(meta.header.stamp)) / 1e6)
    latency.payload_bytes = int(payload_bytes)
    latency.server_queue_ms = float(server_queue_ms)
    latency.server_skipped = int(min(server_skipped, 2**32 - 1))


def fill_receipt(receipt, meta, *, size: int, receive_ns: int, ok: bool) -> None:
    receipt.stream_id = meta.stream_id
    receipt.seq = meta.seq
    receipt.config_id = meta.config_id
    receipt.bytes = int(size)
    receipt.publish_stamp = meta.publish_stamp
    receipt.receive_stamp = Time(sec=receive_ns // 1_000_000_000, nanosec=receive_ns % 1_000_000_000)
    receipt.decoded_ok = bool(ok)
