"""Latency calibration from results: measured compute and jitter replace the table's times,
unobserved configurations are rescaled by what was observed, and a latency SLA is checked
against the predicted tail so a jittery edge does not produce violations."""
import numpy as np
import pytest

from offload_common.lookup_table import LookupTable, LutEntry
from offload_common.monitor import (CalibrationSettings, ChooserSettings, ConfigurationChooser, LatencyCalibrator,
                                    LinkState, Sla)
from offload_common.monitor.calibration import quantile

FAST = LutEntry("fast", "approxbit", 0.90, 500, 4, 1, 3, 2)          # table compute 10 ms
ACCURATE = LutEntry("accurate", "approxbit", 0.99, 1000, 8, 1, 6, 5)  # table compute 20 ms
EDGE = LutEntry("edge_only", "edge_only", 0.99, 0, 30)


def feed(cal, entry, compute_ms, bw=8.0, delay=0.0, overhead=2.0, now_s=0.0):
    """Results of ``entry`` whose non-link time is ``compute_ms`` (one value per result)."""
    for c in compute_ms:
        transmit = 8.0 * entry.bytes / (bw * 1000.0) + delay + overhead if entry.bytes else 0.0
        assert cal.observe(entry, c + transmit, transmit, bw, delay, now_s=now_s)


def test_quantile_interpolates():
    assert quantile([3, 1, 2], 0.5) == 2
    assert quantile([0, 10], 0.9) == pytest.approx(9.0)
    with pytest.raises(ValueError):
        quantile([], 0.5)


def test_observed_configuration_is_predicted_from_its_own_results():
    cal = LatencyCalibrator(CalibrationSettings(window=50, min_results=5, tail_quantile=0.9))
    rng = np.random.default_rng(0)
    compute = 40 + rng.exponential(10, 50)
    feed(cal, FAST, compute, bw=8.0)
    p = cal.predict(FAST, 4.0)                               # a slower link than when observed
    link = 8 * 500 / 4000
    assert p.calibrated
    assert p.median_ms == pytest.approx(np.median(compute) + 2.0 + link, rel=0.02)
    assert p.tail_ms == pytest.approx(np.quantile(compute, 0.9) + 2.0 + link, rel=0.02)
    assert p.tail_ms > p.median_ms


def test_unobserved_configuration_is_rescaled_by_the_observed_edge_and_server_ratios():
    cal = LatencyCalibrator(CalibrationSettings(min_results=5))
    assert not cal.predict(ACCURATE, 8.0, edge_scale=2.0).calibrated
    # before any result: the static edge scale applies to edge times only
    assert cal.predict(ACCURATE, 8.0, edge_scale=2.0).median_ms == pytest.approx(2 * 9 + 11 + 1.0)
    # "fast" measured: edge 30 ms where the table says 5 (x6), server 5 ms as in the table, 5 ms
    # unaccounted (queues); the spread goes into the edge part
    for edge in [25.0] * 5 + [35.0] * 5:
        transmit = 0.5 + 2.0
        assert cal.observe(FAST, edge + 5 + 5 + transmit, transmit, 8.0, edge_ms=edge, server_ms=5.0)
    assert cal.edge_scale() == pytest.approx(6.0) and cal.server_scale() == pytest.approx(1.0)
    p = cal.predict(ACCURATE, 8.0)
    assert not p.calibrated
    # 6 x 9 ms edge + 1 x 11 ms server + 5 ms unaccounted + 1 ms serialisation + 2 ms overhead
    assert p.median_ms == pytest.approx(54 + 11 + 5 + 1 + 2)
    assert p.tail_ms > p.median_ms                              # spread borrowed from "fast"
    # edge-only is all edge: it scales by the edge ratio alone
    assert cal.predict(EDGE, 0.0).median_ms == pytest.approx(6 * 30 + 5)


def test_edge_only_has_no_link_part_and_offload_needs_a_link():
    cal = LatencyCalibrator()
    feed(cal, EDGE, [100.0] * 5)
    assert cal.predict(EDGE, 0.0).median_ms == pytest.approx(100.0)
    assert cal.predict(FAST, 0.0).median_ms == float("inf")


def test_impossible_breakdowns_are_refused_and_windows_forget():
    cal = LatencyCalibrator(CalibrationSettings(window=5, min_results=5))
    assert not cal.observe(FAST, -1.0, 0.0, 8.0)
    assert not cal.observe(FAST, 10.0, 20.0, 8.0)            # transmit longer than the whole
    assert not cal.observe(FAST, 10.0, 1.0, 0.0)             # no bandwidth for an offloaded result
    assert cal.results == 0
    feed(cal, FAST, [100.0] * 5)
    feed(cal, FAST, [20.0] * 5)                             # the edge got faster: old results age out
    assert cal.predict(FAST, 8.0).median_ms == pytest.approx(20.0 + 0.5 + 2.0)
    with pytest.raises(ValueError):
        LatencyCalibrator(CalibrationSettings(tail_quantile=0.99999 + 1))


def test_latency_sla_uses_the_tail_and_the_table_alone_would_violate():
    """'accurate' has a median that fits the SLA but a tail that does not: with calibration the
    chooser takes 'fast', whose tail fits; without it, it takes 'accurate' by its table time."""
    tables = [LookupTable("var", "t", "top1", [FAST, ACCURATE, EDGE])]
    rng = np.random.default_rng(1)
    sla = Sla("latency", latency_ms=60)
    link = LinkState(True, 8.0)
    cal = LatencyCalibrator(CalibrationSettings(window=40, min_results=5, tail_quantile=0.9))
    feed(cal, ACCURATE, 40 + rng.exponential(8, 40))        # p50 ~46, p90 ~58 (+ link 3 ms)
    feed(cal, FAST, 25 + rng.exponential(3, 40))
    feed(cal, EDGE, [90.0] * 10)
    d = ConfigurationChooser(tables, ChooserSettings(headroom=0.0), calibrator=cal).choose(sla, link, 0.0)
    assert d.config_id == "fast" and d.feasible
    assert d.predicted_tail_ms > d.predicted_latency_ms
    plain = ConfigurationChooser(tables, ChooserSettings(headroom=0.0)).choose(sla, link, 0.0)
    assert plain.config_id == "accurate" and plain.predicted_tail_ms == plain.predicted_latency_ms


def test_calibrated_choice_holds_steady_under_jitter():
    """Results keep arriving with jitter; the choice must not flip-flop with every new sample."""
    tables = [LookupTable("var", "t", "top1", [FAST, ACCURATE, EDGE])]
    cal = LatencyCalibrator(CalibrationSettings(window=30, min_results=5, tail_quantile=0.9))
    c = ConfigurationChooser(tables, ChooserSettings(min_dwell_s=5.0), calibrator=cal)
    rng = np.random.default_rng(2)
    sla, link = Sla("latency", latency_ms=70), LinkState(True, 8.0)
    for step in range(600):                                  # 0.2 s decisions for 2 minutes
        d = c.choose(sla, link, step * 0.2)
        entry = ACCURATE if d.config_id == "accurate" else FAST if d.config_id == "fast" else EDGE
        base = {"accurate": 45.0, "fast": 25.0, "edge_only": 90.0}[entry.config_id]
        feed(cal, entry, [base + rng.exponential(5)])
    assert c.switches <= 3
    assert c.current.config_id == "accurate"                 # p90 ~ 45 + 11.5 + 3 < 70


def test_a_configuration_without_results_for_max_age_is_forgotten_and_tried_again():
    """The accurate configuration had a slow spell (the monitor left it for that); with no newer
    results its window would keep it out for good. After ``max_age_s`` without a result it is
    predicted from its table entry again (rescaled by the configuration still in use), so the
    chooser can go back to it; the configuration in use is kept."""
    cal = LatencyCalibrator(CalibrationSettings(window=40, min_results=5, tail_quantile=0.9, max_age_s=30.0))
    feed(cal, ACCURATE, [2000.0] * 10, now_s=100.0)           # the slow spell
    feed(cal, FAST, [10.0] * 10, now_s=100.0)
    assert cal.predict(ACCURATE, 8.0).tail_ms > 2000
    assert cal.expire(120.0) == []
    feed(cal, FAST, [10.0] * 10, now_s=125.0)                # still in use
    assert cal.expire(131.0) == ["accurate"] and cal.forgotten == 1
    p = cal.predict(ACCURATE, 8.0)
    assert not p.calibrated and p.tail_ms < 100
    assert cal.predict(FAST, 8.0).calibrated                 # its newest result is 6 s old
    assert LatencyCalibrator(CalibrationSettings(max_age_s=0.0)).expire(1e9) == []   # 0: never
    with pytest.raises(ValueError):
        LatencyCalibrator(CalibrationSettings(max_age_s=-1.0))
