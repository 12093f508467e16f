"""Estimating the link from live traffic, without synchronised clocks.

Inputs (all timestamps on the monitor's own clock, which is the edge's):
- ``on_receipt``: a payload or probe of ``bytes`` published at ``publish_ns`` whose receipt
  (LinkReceipt from the server side) arrived back at ``arrival_ns``. rtt = arrival - publish.
  * Small messages (< ``capacity_min_bytes``) give the base round trip: its EWMA is the path
    delay (one-way delay = base_rtt / 2).
  * Large messages give capacity samples. Best: a *pair* of large probes sent back to back —
    8 * bytes / (spacing of their server receive stamps): both stamps come from the server's
    clock, and the first probe absorbs the shaper's burst (a token bucket lets its first bytes
    through at line rate, which made a single-message estimate 30 % high at 6 Mbit/s).
    Otherwise 8 * bytes / (rtt - base_rtt), the serialisation time the bottleneck added.
- ``on_external_rate``: a rate somebody else measured (a satellite modem's report); while fresh
  (``external_max_age_s``) it is the bandwidth estimate.
- ``on_interface_bytes``: passive counters of the edge interface (like the paper's iftop): the
  goodput actually used, reported for diagnostics (a lower bound of the capacity).

The link is up while receipts keep arriving: it is declared lost after ``loss_timeout_s``
without one (the monitor's probes keep receipts flowing even when the edge sends nothing).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from offload_common.monitor.chooser import LinkState


BASE_RISE = 0.1


@dataclass
class EstimatorSettings:
    alpha: float = 0.3                 # EWMA weight of a new sample
    loss_timeout_s: float = 1.0
    capacity_min_bytes: int = 8000
    external_max_age_s: float = 5.0
    default_bandwidth_mbps: float = 1.0   # until the first capacity sample or report
    alpha_down: float = 0.7            # weight of a capacity sample below the estimate: drop fast, rise slowly


class Ewma:
    """Exponentially weighted mean; ``alpha_down`` (default: alpha) weighs samples below it."""

    def __init__(self, alpha: float, alpha_down: Optional[float] = None):
        self.alpha, self.value = alpha, None
        self.alpha_down = alpha if alpha_down is None else alpha_down

    def add(self, x: float) -> float:
        if self.value is None:
            self.value = x
        else:
            a = self.alpha_down if x < self.value else self.alpha
            self.value = (1 - a) * self.value + a * x
        return self.value


@dataclass
class LinkEstimate:
    up: bool
    bandwidth_mbps: float
    delay_ms: float                    # one-way, base_rtt / 2
    source: str                        # where bandwidth_mbps came from: external | receipts | default
    goodput_mbps: Optional[float]      # from interface counters
    capacity_mbps: Optional[float]     # from receipts
    since_last_receipt_s: Optional[float]

    def link_state(self) -> LinkState:
        return LinkState(self.up, self.bandwidth_mbps, self.delay_ms)


class LinkEstimator:
    def __init__(self, settings: Optional[EstimatorSettings] = None):
        self.settings = s = settings or EstimatorSettings()
        self.base_rtt_ms: Optional[float] = None
        self.capacity_mbps = Ewma(s.alpha, s.alpha_down)
        self.goodput_mbps = Ewma(s.alpha)
        self.last_receipt_ns: Optional[int] = None
        self.external: Optional[tuple] = None          # (mbps, ns)
        self._iface: Optional[tuple] = None            # (bytes, ns)
        self.receipts = 0
        self.pair_samples = 0
        self._last_large: Optional[tuple] = None       # (seq, server receive ns) of the last large receipt

    def on_receipt(self, nbytes: int, publish_ns: int, arrival_ns: int, seq: Optional[int] = None,
                   server_receive_ns: Optional[int] = None) -> None:
        rtt_ms = (arrival_ns - publish_ns) / 1e6
        if rtt_ms < 0:
            return                                     # clock went backwards: ignore
        self.receipts += 1
        self.last_receipt_ns = max(arrival_ns, self.last_receipt_ns or 0)
        s = self.settings
        large = nbytes >= s.capacity_min_bytes
        prev, self._last_large = self._last_large, ((seq, server_receive_ns) if large else None)
        if large and prev and seq is not None and server_receive_ns is not None and prev[0] == seq - 1:
            gap_ms = (server_receive_ns - prev[1]) / 1e6
            if gap_ms > 0.05:
                self.capacity_mbps.add(8.0 * nbytes / (gap_ms * 1000.0))
                self.pair_samples += 1
            return
        if nbytes < s.capacity_min_bytes:
            # queueing behind large messages only ever adds to a small message's RTT: the base
            # drops to any lower sample at once and rises slowly (a path that got longer)
            base = self.base_rtt_ms
            self.base_rtt_ms = rtt_ms if base is None or rtt_ms < base else base + BASE_RISE * (rtt_ms - base)
        elif self.base_rtt_ms is not None and not self.pair_samples:
            extra_ms = rtt_ms - self.base_rtt_ms
            if extra_ms > 0.05:
                self.capacity_mbps.add(8.0 * nbytes / (extra_ms * 1000.0))

    def on_alive(self, arrival_ns: int) -> None:
        """Something came back over the link (no timing information)."""
        self.last_receipt_ns = max(arrival_ns, self.last_receipt_ns or 0)

    def on_external_rate(self, mbps: float, now_ns: int) -> None:
        if mbps > 0:
            self.external = (float(mbps), now_ns)

    def on_interface_bytes(self, total_bytes: int, now_ns: int) -> None:
        if self._iface is not None:
            db, dt = total_bytes - self._iface[0], (now_ns - self._iface[1]) / 1e9
            if dt > 0 and db >= 0:
                self.goodput_mbps.add(8.0 * db / dt / 1e6)
        self._iface = (total_bytes, now_ns)

    def estimate(self, now_ns: int) -> LinkEstimate:
        s = self.settings
        since = None if self.last_receipt_ns is None else (now_ns - self.last_receipt_ns) / 1e9
        up = since is not None and since < s.loss_timeout_s
        if self.external and (now_ns - self.external[1]) / 1e9 <= s.external_max_age_s:
            bw, source = self.external[0], "external"
        elif self.capacity_mbps.value is not None:
            bw, source = self.capacity_mbps.value, "receipts"
        else:
            bw, source = s.default_bandwidth_mbps, "default"
        delay = (self.base_rtt_ms or 0.0) / 2.0
        return LinkEstimate(up, bw, delay, source, self.goodput_mbps.value, self.capacity_mbps.value, since)


def read_interface_bytes(interface: str, direction: str = "tx") -> Optional[int]:
    """Byte counter of a network interface (Linux sysfs), None when unavailable."""
    try:
        with open(f"/sys/class/net/{interface}/statistics/{direction}_bytes") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None
