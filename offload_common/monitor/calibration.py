"""Learning what configurations really cost on this robot, from the results they produce.

The lookup tables are profiled on one machine; the edge that runs them may be slower (a Jetson,
a CPU quota, a busy core) and its timing jittery. Every result carries its latency breakdown
(``LatencyBreakdown``: total capture -> result, and the part spent on the link), so the monitor
learns, per configuration c, from the results of c sent at bandwidth estimate B and delay d:

    rest    = total - 8 * bytes / B - d     (everything but serialisation and propagation)
    edge, server                            (the breakdown's edge and server parts)

and, over all results, the link's overhead = transmit - 8 * bytes / B - d (DDS, relays, queues)
and what the breakdown leaves unaccounted = total - transmit - edge - server (queues, middleware).

Predictions (``LatencyCalibrator.predict``), Eq. 1 with measured parts, for c observed:
    t_p50  = median(rest[c])        + 8 * bytes / B + d
    t_tail = quantile_q(rest[c])    + 8 * bytes / B + d        (q = ``tail_quantile``)
A configuration not yet observed is predicted from its table entry: its edge times scaled by the
median measured/table ratio of the edge parts of the configurations observed, its server times
likewise (a CPU-starved edge and a fast server rescale differently; the static ``edge_scale`` /
``server_scale`` before any result), plus the median of what the breakdown leaves unaccounted
(queues, middleware), 8 * bytes / B + d + median(overhead); its tail by the median relative
spread of the others.

Windows are bounded, so old behaviour of a configuration in use ages out. A configuration not in
use sends no results, so its window would keep whatever made the monitor leave it (a slow spell,
a backlog after a link outage) for good, and the monitor would never try it again: with
``max_age_s`` a configuration whose newest result is older than that is forgotten (``expire``)
and predicted from its table entry again until its next results.

Pure Python, no ROS.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Deque, Dict, Optional

from offload_common.lookup_table import LutEntry


def quantile(values, q: float) -> float:
    """Linear-interpolated quantile of a non-empty sequence."""
    v = sorted(values)
    if not v:
        raise ValueError("quantile of no values")
    pos = q * (len(v) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


@dataclass
class CalibrationSettings:
    window: int = 40              # results remembered per configuration
    min_results: int = 5          # results before a configuration's own times are trusted
    tail_quantile: float = 0.9    # latency SLA checked against this quantile (0.5: the median only)
    max_age_s: float = 0.0        # forget a configuration with no result for this long (0: never)


@dataclass(frozen=True)
class Prediction:
    median_ms: float
    tail_ms: float                # predicted quantile ``tail_quantile`` of the latency
    calibrated: bool              # from this configuration's own results (else table x scale)


class LatencyCalibrator:
    def __init__(self, settings: Optional[CalibrationSettings] = None):
        self.settings = settings or CalibrationSettings()
        if not 0.5 <= self.settings.tail_quantile < 1.0:
            raise ValueError("tail_quantile must be in [0.5, 1)")
        if self.settings.window < 1 or self.settings.min_results < 1:
            raise ValueError("window and min_results must be >= 1")
        if self.settings.max_age_s < 0:
            raise ValueError("max_age_s must be >= 0")
        self._rest: Dict[str, Deque[float]] = {}
        self._overhead: Deque[float] = deque(maxlen=4 * self.settings.window)
        self._edge: Dict[str, Deque[float]] = {}
        self._server: Dict[str, Deque[float]] = {}
        self._other: Deque[float] = deque(maxlen=4 * self.settings.window)   # total - transmit - edge - server
        self._entries: Dict[str, LutEntry] = {}       # the table entry of every configuration observed
        self._newest: Dict[str, float] = {}           # time of each configuration's newest result
        self.results = 0
        self.forgotten = 0                            # configurations forgotten by ``expire``

    def observe(self, entry: LutEntry, total_ms: float, transmit_ms: float, bandwidth_mbps: float,
                delay_ms: float = 0.0, edge_ms: float = 0.0, server_ms: float = 0.0, now_s: float = 0.0) -> bool:
        """One result of ``entry``, sent while the estimate was ``bandwidth_mbps`` / ``delay_ms``;
        ``edge_ms`` / ``server_ms`` are the breakdown's edge (model + encoder) and server (decoder +
        model) parts; ``now_s`` is when it came (for ``expire``). Returns False (and learns
        nothing) for a breakdown that cannot be right."""
        link = entry.link_ms(bandwidth_mbps, delay_ms)
        if not (0 < total_ms < 1e6 and 0 <= transmit_ms <= total_ms and link != float("inf")):
            return False
        w, cid = self.settings.window, entry.config_id
        self._entries[cid] = entry
        self._newest[cid] = now_s
        self._rest.setdefault(cid, deque(maxlen=w)).append(total_ms - link)
        if link > 0:
            self._overhead.append(transmit_ms - link)
        if edge_ms > 0 or server_ms > 0:
            self._edge.setdefault(cid, deque(maxlen=w)).append(max(0.0, edge_ms))
            self._server.setdefault(cid, deque(maxlen=w)).append(max(0.0, server_ms))
            self._other.append(max(0.0, total_ms - transmit_ms - edge_ms - server_ms))
        self.results += 1
        return True

    def expire(self, now_s: float) -> list:
        """Forget every configuration whose newest result is more than ``max_age_s`` before
        ``now_s`` (nothing when ``max_age_s`` is 0); returns their ids."""
        if self.settings.max_age_s <= 0:
            return []
        old = [cid for cid, t in self._newest.items() if now_s - t > self.settings.max_age_s]
        for cid in old:
            for store in (self._rest, self._edge, self._server, self._entries, self._newest):
                store.pop(cid, None)
        self.forgotten += len(old)
        return old

    def _scale(self, measured: Dict[str, Deque[float]], part: str) -> Optional[float]:
        """Median over the observed configurations of median(measured) / table time of ``part``."""
        table = {cid: getattr(self._entries[cid], part) for cid in measured}
        ratios = [quantile(v, 0.5) / table[cid] for cid, v in measured.items()
                  if len(v) >= self.settings.min_results and table[cid] > 0]
        return quantile(ratios, 0.5) if ratios else None

    def edge_scale(self) -> Optional[float]:
        """Measured/table ratio of the edge part (None: no configuration observed enough yet)."""
        return self._scale(self._edge, "edge_part_ms")

    def server_scale(self) -> Optional[float]:
        return self._scale(self._server, "server_part_ms")

    def transmit_overhead_ms(self) -> float:
        if len(self._overhead) < self.settings.min_results:
            return 0.0
        return max(0.0, quantile(self._overhead, 0.5))

    def predict(self, entry: LutEntry, bandwidth_mbps: float, delay_ms: float = 0.0, edge_scale: float = 1.0,
                server_scale: float = 1.0) -> Prediction:
        s = self.settings
        link = entry.link_ms(bandwidth_mbps, delay_ms)
        if link == float("inf"):
            return Prediction(link, link, False)
        own = self._rest.get(entry.config_id, ())
        if len(own) >= s.min_results:
            return Prediction(quantile(own, 0.5) + link, quantile(own, s.tail_quantile) + link, True)
        es, ss = self.edge_scale(), self.server_scale()
        compute = ((es if es is not None else edge_scale) * entry.edge_part_ms
                   + (ss if ss is not None else server_scale) * entry.server_part_ms)
        if es is not None or ss is not None:
            compute += quantile(self._other, 0.5) if self._other else 0.0
        median = compute + link + (self.transmit_overhead_ms() if link > 0 else 0.0)
        return Prediction(median, median * (1.0 + self._typical_spread()), False)

    def _typical_spread(self) -> float:
        """(quantile - median) / median of ``rest``, the median over the observed configurations."""
        q = self.settings.tail_quantile
        spreads = [(quantile(r, q) - quantile(r, 0.5)) / max(1e-6, quantile(r, 0.5))
                   for r in self._rest.values() if len(r) >= self.settings.min_results]
        return max(0.0, quantile(spreads, 0.5)) if spreads else 0.0
