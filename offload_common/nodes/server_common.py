"""What both servers share around their library: the parameters that bound per-stream state and
sequence / stamp sanity (``StreamLimits``), payload authentication, load shedding, and the
``/diagnostics`` status with every counter."""
from __future__ import annotations

from typing import Callable, Dict, Optional

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from offload_common.nodes.params import Param
from offload_common.nodes.payload_signing import verify_payload
from offload_common.payload_auth import load_keys
from offload_common.payload_checks import Refusal, StreamLimits

SERVER_PARAMETERS = (
    Param("max_streams", 8, "streams served at once; a new stream id beyond is refused until one has been idle for "
          "stream_idle_timeout_s", read_only=True, range=(1, 1024)),
    Param("stream_idle_timeout_s", 60.0, "a stream with no accepted payload for this long is forgotten (its "
          "decoder freed)", read_only=True, range=(0.1, 86400.0)),
    Param("max_seq_gap", 1000, "a sequence jump larger than this plus max_seq_rate_hz per second of capture time "
          "is refused (not counted as losses)", read_only=True, range=(0, 1 << 40)),
    Param("max_seq_rate_hz", 1000.0, "payloads per second a sender may number (see max_seq_gap)", read_only=True,
          range=(0.0, 1e6)),
    Param("max_stamp_lead_s", 5.0, "payloads whose capture stamp is further ahead of the server clock are refused",
          read_only=True, range=(0.0, 86400.0)),
    Param("max_stamp_age_s", 60.0, "payloads whose capture stamp is older are refused (0: no limit, e.g. for "
          "bags replayed without --clock)", read_only=True, range=(0.0, 1e9)),
    Param("auth_key_file", "", "pre-shared key file ('<key_id> <hex secret>' lines, mode 600): payloads without a "
          "valid HMAC-SHA256 tag are dropped (empty: no authentication)", read_only=True),
    Param("shed_load", True, "when the model falls behind, run it on the newest payload of each stream and skip "
          "the rest (counted); false: serve every payload in order, however late", read_only=True),
    Param("diagnostics_period_s", 1.0, "publish the server's counters on /diagnostics this often (0: never)",
          read_only=True, range=(0.0, 3600.0)),
)

EDGE_AUTH_PARAMETERS = (
    Param("auth_key_file", "", "pre-shared key file ('<key_id> <hex secret>' lines, mode 600): every payload is "
          "tagged with the first key (HMAC-SHA256; empty: untagged)", read_only=True),
)


def stream_limits(p) -> StreamLimits:
    """The ``StreamLimits`` of a server node's declared parameters."""
    return StreamLimits(max_streams=p.max_streams, idle_timeout_s=p.stream_idle_timeout_s, max_seq_gap=p.max_seq_gap,
                        max_seq_rate_hz=p.max_seq_rate_hz, max_stamp_lead_s=p.max_stamp_lead_s,
                        max_stamp_age_s=p.max_stamp_age_s)


def payload_keys(node, path: str):
    """The node's keys (None without a key file), logged; a bad file stops the start-up (ValueError)."""
    keys = load_keys(path)
    if keys is not None:
        node.get_logger().info(f"payload authentication on: {len(keys.keys)} key(s) from {path}, "
                               f"signing key '{keys.signing_id}'")
    return keys


def log_throttled(logger, count: int, line: str) -> None:
    """An error line for the first 20 occurrences of something, then every 100th: a flood of
    hostile payloads must not become a flood of log lines."""
    if count <= 20 or count % 100 == 0:
        logger.error(line)


def refuse_unauthenticated(msg, keys, counters) -> Optional[Refusal]:
    """Why ``msg`` lacks a valid tag (counted as received and rejected), or None when it has one or
    the server has no keys. Checked before anything else; the caller sends no receipt for it."""
    refusal = verify_payload(msg, keys)
    if refusal:
        counters.received += 1
        counters.reject(*refusal)
    return refusal


class ServerDiagnostics:
    """Publishes ``counters()`` (name -> number) as one DiagnosticStatus on ``/diagnostics`` every
    ``period_s``: WARN while payloads are being rejected or skipped, else OK."""

    def __init__(self, node, name: str, period_s: float, counters: Callable[[], Dict[str, int]]):
        self.node, self.name, self.counters = node, name, counters
        self._last: Optional[Dict[str, int]] = None
        self.pub = node.create_publisher(DiagnosticArray, "/diagnostics", 10)
        if period_s > 0:
            node.create_timer(period_s, self.publish)

    def publish(self) -> None:
        c = self.counters()
        last, self._last = self._last or {}, c
        grew = [k for k in ("rejected", "superseded", "failed") if c.get(k, 0) > last.get(k, 0)]
        st = DiagnosticStatus(name=self.name, hardware_id="edge_offload")
        st.level = DiagnosticStatus.WARN if grew else DiagnosticStatus.OK
        st.message = ("payloads " + ", ".join(grew) + " since the last report") if grew else "serving"
        st.values = [KeyValue(key=k, value=str(v)) for k, v in c.items()]
        arr = DiagnosticArray(status=[st])
        arr.header.stamp = self.node.get_clock().now().to_msg()
        self.pub.publish(arr)
