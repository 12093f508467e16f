"""Choosing a configuration for an SLA (ApproxBit Eq. 1-2), without oscillating.

For every deployable configuration in the stream's lookup tables, predicted latency at the
estimated bandwidth B and one-way delay d (Eq. 1):
    t = t_edge + t_enc + 8 * bytes / B + t_dec + t_server + d        (edge-only: t_edge)

Eq. 2, latency SLA: max accuracy s.t. t < t_user;  accuracy SLA: min t s.t. accuracy > acc_user.

With a ``LatencyCalibrator`` (calibration.py) the times come from the results the stream has
produced, and a latency SLA is checked against the predicted tail (e.g. the 90th percentile)
rather than the median, so jitter on a slow edge does not turn a "feasible" choice into
violations; the decision reports both.

Rules that keep the choice stable (documented in docs/monitor.md):
1. Link down: edge_only at once (no dwell) — the only configuration that needs no link.
2. Feasible with headroom: a configuration the monitor switches *to* must meet a latency SLA
   with ``headroom`` to spare (t < (1 - headroom) * t_user); the configuration in force stays
   feasible until t >= t_user. The band between the two absorbs bandwidth fluctuation.
3. A switch for improvement (the one in force still meets the SLA) needs ``min_dwell_s`` since
   the last switch and a real gain: accuracy + ``accuracy_margin``, or latency below
   (1 - ``latency_margin``) of the current one. A configuration that had to be left because it
   violated the SLA is re-entered only after a dwell that doubles with every such exit (up to
   ``max_dwell_s``; forgiven once it holds for ``max_dwell_s``): bandwidth that keeps
   crossing a threshold costs a few switches, not one per crossing.
4. A forced switch (the one in force violates the SLA, or the link came back) happens at once.
5. No configuration feasible: latency SLA -> the lowest predicted latency; accuracy SLA -> the
   highest accuracy (ties: lower latency). Both are "best effort toward the SLA" and depend only
   on the ordering of predictions, which rule 3's dwell and margins guard like any other switch;
   the decision says sla_feasible = false.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, List, Optional, Tuple

from offload_common.lookup_table import EDGE_ONLY, LookupTable, LutEntry
from offload_common.monitor.calibration import LatencyCalibrator, Prediction

SLA_LATENCY, SLA_ACCURACY = "latency", "accuracy"


@dataclass(frozen=True)
class Sla:
    kind: str                     # "latency" or "accuracy"
    latency_ms: float = 0.0       # for kind "latency": t < latency_ms
    accuracy: float = 0.0         # for kind "accuracy": accuracy > accuracy

    def __post_init__(self):
        if self.kind not in (SLA_LATENCY, SLA_ACCURACY):
            raise ValueError(f"SLA kind must be 'latency' or 'accuracy', got {self.kind!r}")
        if self.kind == SLA_LATENCY and self.latency_ms <= 0:
            raise ValueError("a latency SLA needs latency_ms > 0")
        if self.kind == SLA_ACCURACY and not 0.0 <= self.accuracy <= 1.0:
            raise ValueError("an accuracy SLA needs accuracy in [0, 1]")


def parse_sla_schedule(text: str) -> List[Tuple[float, str, float]]:
    """An SLA schedule 't_s:kind:value,...' in time order:
    '60:accuracy:0.95,0:latency:200' -> [(0.0, 'latency', 200.0), (60.0, 'accuracy', 0.95)]."""
    out = []
    for item in filter(None, (s.strip() for s in text.split(","))):
        try:
            t, kind, value = item.split(":")
            entry = (float(t), kind.strip(), float(value))
        except ValueError:
            raise ValueError(f"bad SLA schedule entry {item!r}; expected t_s:kind:value") from None
        if entry[1] not in (SLA_LATENCY, SLA_ACCURACY):
            raise ValueError(f"bad SLA kind {entry[1]!r} in {item!r}; expected latency or accuracy")
        out.append(entry)
    return sorted(out)


@dataclass(frozen=True)
class LinkState:
    up: bool
    bandwidth_mbps: float
    delay_ms: float = 0.0


@dataclass(frozen=True)
class Decision:
    config_id: str
    method: str
    reason: str
    feasible: bool
    predicted_latency_ms: float
    predicted_accuracy: float
    switched: bool
    predicted_tail_ms: float = 0.0     # latency quantile the calibrator predicts (= median without one)


@dataclass
class ChooserSettings:
    min_dwell_s: float = 5.0
    max_dwell_s: float = 60.0
    headroom: float = 0.1
    accuracy_margin: float = 0.005
    latency_margin: float = 0.1
    edge_scale: float = 1.0       # edge times in the tables x this (tables measured on another machine)
    server_scale: float = 1.0


class ConfigurationChooser:
    """Stateful chooser for one task stream."""

    def __init__(self, tables: Iterable[LookupTable], settings: Optional[ChooserSettings] = None,
                 initial: Optional[str] = None, calibrator: Optional[LatencyCalibrator] = None):
        self.settings = settings or ChooserSettings()
        self.calibrator = calibrator
        self.entries: List[LutEntry] = [e for t in tables for e in t.entries if e.deployable]
        if not self.entries:
            raise ValueError("no deployable configuration in the lookup tables")
        ids = [e.config_id for e in self.entries]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"configuration ids repeat across lookup tables: {', '.join(repeated)} (one table per "
                             "configuration: e.g. a stream's action table or its VQA table, not both)")
        self.current: Optional[LutEntry] = next((e for e in self.entries if e.config_id == initial), None)
        self.last_switch_s = float("-inf")
        self.switches = 0
        self.fell_back = False        # the configuration in force is the link-down fallback
        self.exits = {}               # config id -> (forced exits, time of the last)

    def prediction(self, e: LutEntry, link: LinkState) -> Prediction:
        """Median and tail latency: from the calibrator when there is one, else the table (Eq. 1)."""
        s = self.settings
        bw = link.bandwidth_mbps if link.up else 0.0
        if self.calibrator is not None:
            return self.calibrator.predict(e, bw, link.delay_ms, s.edge_scale, s.server_scale)
        t = e.latency_ms(bw, link.delay_ms, s.edge_scale, s.server_scale)
        return Prediction(t, t, False)

    def predict(self, e: LutEntry, link: LinkState) -> float:
        return self.prediction(e, link).median_ms

    def _meets(self, e: LutEntry, p: Prediction, sla: Sla, headroom: float) -> bool:
        """A latency SLA is checked against the tail prediction (the median without a calibrator)."""
        if sla.kind == SLA_LATENCY:
            return p.tail_ms < (1.0 - headroom) * sla.latency_ms
        return e.accuracy > sla.accuracy

    def _best(self, scored, sla: Sla, headroom: float):
        """(entry, prediction, feasible) by Eq. 2, or the infeasible rule. Latencies are ranked by
        the tail prediction for a latency SLA, by the median for an accuracy SLA."""
        inf = float("inf")
        feasible = [(e, p) for e, p in scored if p.median_ms != inf and self._meets(e, p, sla, headroom)]
        pool = feasible or [(e, p) for e, p in scored if p.median_ms != inf]
        if not pool:
            return None, Prediction(inf, inf, False), False
        if sla.kind == SLA_LATENCY:
            key = (lambda ep: (-ep[0].accuracy, ep[1].tail_ms)) if feasible else (lambda ep: (ep[1].tail_ms, -ep[0].accuracy))
        else:
            key = (lambda ep: (ep[1].median_ms, -ep[0].accuracy)) if feasible else (lambda ep: (-ep[0].accuracy, ep[1].median_ms))
        e, p = min(pool, key=key)
        return e, p, bool(feasible)

    def choose(self, sla: Sla, link: LinkState, now_s: float) -> Decision:
        s = self.settings
        scored = [(e, self.prediction(e, link)) for e in self.entries]
        if not link.up:
            scored = [(e, p) for e, p in scored if e.config_id == EDGE_ONLY]
            if not scored:
                return self._keep(link, "link down and no edge-only configuration: keeping the current one")
        best, p_best, feasible = self._best(scored, sla, s.headroom)
        if best is None:
            return self._keep(link, "no configuration can run (bandwidth unknown)")
        lat = (lambda p: p.tail_ms) if sla.kind == SLA_LATENCY else (lambda p: p.median_ms)
        cur = self.current
        if cur is not None and cur is not best and not self._forced(cur, link, sla, feasible):
            p_cur = self.prediction(cur, link)
            dwell_over = now_s - self.last_switch_s >= self._dwell(best, now_s)
            faster = lat(p_best) <= (1.0 - s.latency_margin) * lat(p_cur)
            more_accurate = best.accuracy >= cur.accuracy + s.accuracy_margin
            if sla.kind == SLA_LATENCY:
                better = more_accurate if feasible else faster
            else:
                better = faster if feasible else more_accurate
            if not (better and dwell_over):
                why = "meets the SLA" if self._meets(cur, p_cur, sla, 0.0) else "SLA infeasible"
                why += "" if better else ", nothing better by the margin"
                why += "" if dwell_over else f", dwell {self._dwell(best, now_s):g} s"
                return self._decision(cur, p_cur, feasible, f"keeping ({why})", False)
        switched = cur is not best
        if switched and cur is not None and link.up and not self.fell_back and not self._meets(
                cur, self.prediction(cur, link), sla, 0.0):
            n, _ = self.exits.get(cur.config_id, (0, now_s))
            n = 0 if now_s - self.last_switch_s > s.max_dwell_s else n    # it had held long: forgive
            self.exits[cur.config_id] = (n + 1, now_s)
        if switched:
            self.current, self.last_switch_s = best, now_s
            self.switches += 1
            self.fell_back = not link.up
        elif link.up:
            self.fell_back = False    # edge-only is now simply the best choice
        return self._decision(best, p_best, feasible, self._reason(sla, link, feasible), switched)

    def _dwell(self, target: LutEntry, now_s: float) -> float:
        s = self.settings
        n, last = self.exits.get(target.config_id, (0, float("-inf")))
        if n == 0 or now_s - last > s.max_dwell_s:
            return s.min_dwell_s
        return min(s.max_dwell_s, s.min_dwell_s * 2 ** n)

    def _forced(self, cur: LutEntry, link: LinkState, sla: Sla, best_feasible: bool) -> bool:
        """A switch that must not wait: the current configuration cannot run (link down), it
        was an edge-only fallback and the link is back, or it violates an SLA another meets."""
        if not link.up:
            return cur.config_id != EDGE_ONLY
        if self.fell_back:
            return True
        return best_feasible and not self._meets(cur, self.prediction(cur, link), sla, 0.0)

    def _reason(self, sla: Sla, link: LinkState, feasible: bool) -> str:
        if not link.up:
            return "link down: edge-only fallback"
        if sla.kind == SLA_LATENCY:
            return (f"max accuracy with latency < {sla.latency_ms:.0f} ms" if feasible else
                    f"no configuration meets {sla.latency_ms:.0f} ms: lowest latency")
        return (f"min latency with accuracy > {sla.accuracy:.3f}" if feasible else
                f"no configuration reaches accuracy {sla.accuracy:.3f}: highest accuracy")

    def _keep(self, link: LinkState, reason: str) -> Decision:
        cur = self.current or self.entries[0]
        self.current = cur
        return self._decision(cur, self.prediction(cur, link), False, reason, False)

    @staticmethod
    def _decision(e: LutEntry, p: Prediction, feasible: bool, reason: str, switched: bool) -> Decision:
        return Decision(e.config_id, e.method, reason, feasible, p.median_ms, e.accuracy, switched, p.tail_ms)
