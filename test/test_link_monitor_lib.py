"""Link monitor library: Eq. 1-2 choice over synthetic lookup tables, stability rules
(headroom, margins, dwell, infeasible SLA), link-down fallback and recovery; link estimation
from receipts, probes, external reports and interface counters over synthetic traces."""
import numpy as np
import pytest

from offload_common.lookup_table import LookupTable, LutEntry
from offload_common.monitor import (ChooserSettings, ConfigurationChooser, EstimatorSettings, LinkEstimator,
                                    LinkState, Sla)


def table():
    return LookupTable("var", "test", "top1", [
        LutEntry("big", "approxbit", 0.99, 40_000, 10, 1, 10, 5),       # 26 ms + 320 ms at 1 Mb/s
        LutEntry("mid", "approxbit", 0.97, 4_000, 10, 1, 10, 5),
        LutEntry("small", "approxbit", 0.90, 400, 10, 1, 10, 5),
        LutEntry("edge_only", "edge_only", 0.99, 0, 400),
        LutEntry("h264", "baseline", 0.99, 100, 1, 1, 1, 1, deployable=False),
    ])


def chooser(**kw):
    return ConfigurationChooser([table()], ChooserSettings(**{"min_dwell_s": 5.0, **kw}))


def test_eq1_latency_prediction():
    e = table().entries[0]
    assert e.latency_ms(1.0) == pytest.approx(26 + 320)
    assert e.latency_ms(10.0, delay_ms=20) == pytest.approx(26 + 32 + 20)
    assert e.latency_ms(1.0, edge_scale=3.0) == pytest.approx(33 + 15 + 320)
    assert table().get("edge_only").latency_ms(0.0) == 400
    assert e.latency_ms(0.0) == float("inf")


def test_latency_sla_picks_max_accuracy_that_fits_and_never_a_non_deployable_entry():
    c = chooser()
    d = c.choose(Sla("latency", latency_ms=100), LinkState(True, 50.0), 0.0)
    assert d.config_id == "big" and d.feasible                  # 26 + 6.4 ms
    c = chooser()
    d = c.choose(Sla("latency", latency_ms=100), LinkState(True, 2.0), 0.0)
    assert d.config_id == "mid" and d.predicted_latency_ms == pytest.approx(26 + 16)
    assert "max accuracy" in d.reason


def test_accuracy_sla_picks_min_latency_above_the_bound():
    c = chooser()
    d = c.choose(Sla("accuracy", accuracy=0.95), LinkState(True, 2.0), 0.0)
    assert d.config_id == "mid"
    c = chooser()
    d = c.choose(Sla("accuracy", accuracy=0.98), LinkState(True, 0.5), 0.0)
    assert d.config_id == "edge_only"                         # 400 ms < 666 ms for big


def test_infeasible_slas_follow_the_documented_rule():
    d = chooser().choose(Sla("latency", latency_ms=5), LinkState(True, 2.0), 0.0)
    assert not d.feasible and d.config_id == "small" and "lowest latency" in d.reason
    d = chooser().choose(Sla("accuracy", accuracy=0.995), LinkState(True, 50.0), 0.0)
    assert not d.feasible and d.config_id == "big" and "highest accuracy" in d.reason   # ties: lower latency


def test_link_down_falls_back_at_once_and_recovery_does_not_wait_for_the_dwell():
    c = chooser()
    sla = Sla("latency", latency_ms=100)
    assert c.choose(sla, LinkState(True, 50.0), 0.0).config_id == "big"
    d = c.choose(sla, LinkState(False, 50.0), 0.5)
    assert d.config_id == "edge_only" and d.switched and "link down" in d.reason
    d = c.choose(sla, LinkState(True, 50.0), 1.0)             # back 0.5 s later, dwell 5 s
    assert d.config_id == "big" and d.switched


def test_a_violated_sla_switches_at_once_an_improvement_waits_for_dwell_and_margin():
    c = chooser()
    sla = Sla("latency", latency_ms=100)
    assert c.choose(sla, LinkState(True, 50.0), 0.0).config_id == "big"
    assert c.choose(sla, LinkState(True, 2.0), 1.0).config_id == "mid"   # big: 186 ms, violated
    d = c.choose(sla, LinkState(True, 50.0), 2.0)             # big fits again, but within dwell
    assert d.config_id == "mid" and not d.switched and "dwell" in d.reason
    assert c.choose(sla, LinkState(True, 50.0), 6.5).config_id == "mid"   # left for a violation: 2 x dwell
    assert c.choose(sla, LinkState(True, 50.0), 11.5).config_id == "big"


def test_fluctuating_bandwidth_at_the_threshold_does_not_oscillate():
    """'big' needs ~4.3 Mb/s for 100 ms; the bandwidth wanders 3.5-5.5 Mb/s for 10 minutes."""
    rng = np.random.default_rng(0)
    c = chooser(min_dwell_s=2.0)
    sla = Sla("latency", latency_ms=100)
    violations = 0
    for i in range(6000):
        bw = 4.5 + rng.uniform(-1.0, 1.0)
        d = c.choose(sla, LinkState(True, bw), i * 0.1)
        violations += table().get(d.config_id).latency_ms(bw) >= 100
    assert c.switches / 10 <= 4, c.switches                 # per minute
    assert violations / 6000 < 0.05


def test_infeasible_sla_is_stable_under_fluctuation():
    rng = np.random.default_rng(1)
    c = chooser(min_dwell_s=2.0)
    sla = Sla("latency", latency_ms=20)                       # nothing gets under 26 ms
    ids = [c.choose(sla, LinkState(True, 3 + rng.uniform(-2, 2)), i * 0.1).config_id for i in range(3000)]
    assert set(ids) == {"small"} and c.switches == 1


def test_headroom_keeps_a_margin_below_the_latency_sla():
    c = chooser(headroom=0.2)
    d = c.choose(Sla("latency", latency_ms=60), LinkState(True, 10.0), 0.0)
    assert d.config_id == "mid"                               # big: 58 ms < 60 but not < 48


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError):
        Sla("throughput")
    with pytest.raises(ValueError):
        Sla("latency", latency_ms=0)
    with pytest.raises(ValueError):
        ConfigurationChooser([LookupTable("x", "t", "top1", [LutEntry("a", "baseline", 1, 1, 1, deployable=False)])])
    with pytest.raises(ValueError):
        ConfigurationChooser([table(), table()])              # repeated ids


def test_lookup_table_round_trips(tmp_path):
    p = str(tmp_path / "lut.json")
    t = table()
    t.meta["device"] = "test"
    t.save(p)
    back = LookupTable.load(p)
    assert back == t
    (tmp_path / "bad.json").write_text('{"entries": []}')
    with pytest.raises(ValueError):
        LookupTable.load(str(tmp_path / "bad.json"))


# ---- link estimation -------------------------------------------------------------------------

def simulate(est, bandwidth_mbps, base_rtt_ms, t0_s, seconds, large_every=10):
    """Probes every 0.1 s (200 B), every ``large_every``-th one 20 kB, through a link of the
    given rate and base RTT (serialisation added on the way out)."""
    ms = 1e6
    for i in range(int(seconds * 10)):
        size = 20_000 if i % large_every == 0 else 200
        pub = int((t0_s + i * 0.1) * 1e9)
        rtt = base_rtt_ms + 8 * size / (bandwidth_mbps * 1000)
        est.on_receipt(size, pub, pub + int(rtt * ms))
    return int((t0_s + seconds) * 1e9)


def test_estimator_recovers_bandwidth_and_delay_from_probe_receipts():
    est = LinkEstimator(EstimatorSettings(alpha=0.5))
    now = simulate(est, 3.0, 40.0, 0.0, 10)
    e = est.estimate(now)
    assert e.up and e.source == "receipts"
    assert e.bandwidth_mbps == pytest.approx(3.0, rel=0.05)
    assert e.delay_ms == pytest.approx(20.0 + 8 * 200 / 3000 / 2, rel=0.05)
    now = simulate(est, 50.0, 40.0, 10.0, 10)
    assert est.estimate(now).bandwidth_mbps == pytest.approx(50.0, rel=0.1)


def test_estimator_declares_the_link_lost_after_silence_and_back_on_the_next_receipt():
    est = LinkEstimator(EstimatorSettings(loss_timeout_s=1.0))
    assert not est.estimate(0).up                             # nothing heard yet
    now = simulate(est, 6.0, 10.0, 0.0, 2)
    assert est.estimate(now).up
    assert not est.estimate(now + int(1.2e9)).up
    est.on_receipt(200, now + int(3e9), now + int(3.01e9))
    assert est.estimate(now + int(3.02e9)).up


def test_external_rate_wins_while_fresh_and_counters_give_goodput():
    est = LinkEstimator(EstimatorSettings(external_max_age_s=2.0, alpha=1.0))
    now = simulate(est, 6.0, 10.0, 0.0, 2)
    est.on_external_rate(3.0, now)
    assert est.estimate(now).bandwidth_mbps == 3.0 and est.estimate(now).source == "external"
    assert est.estimate(now + int(3e9)).source == "receipts"
    est.on_interface_bytes(1_000_000, 0)
    est.on_interface_bytes(1_375_000, int(1e9))
    assert est.estimate(now).goodput_mbps == pytest.approx(3.0)


def test_queueing_behind_large_messages_does_not_inflate_the_base_delay():
    est = LinkEstimator()
    for i in range(50):
        pub = i * 100_000_000
        est.on_receipt(200, pub, pub + 10_000_000 + (i % 2) * 30_000_000)   # every other one queued 30 ms
    assert est.estimate(5_000_000_000).delay_ms < 5.0 + 30 * 0.15 / 2


def test_probe_pairs_measure_capacity_by_dispersion_despite_a_burst():
    """A token bucket lets the first probe of a pair through fast; the second one's spacing on the
    server clock (offset by an unknown 7 s) still gives the rate."""
    est = LinkEstimator(EstimatorSettings(alpha=1.0))
    now = simulate(est, 6.0, 20.0, 0.0, 2)            # base RTT from small probes
    t = now
    size = 20_000
    first_rx = t + int(5e6)                           # burst: arrives early
    second_rx = first_rx + int(8 * size / 6.0e6 * 1e9)
    offset = int(7e9)
    est.on_receipt(size, t, first_rx + int(10e6), seq=100, server_receive_ns=first_rx + offset)
    est.on_receipt(size, t, second_rx + int(10e6), seq=101, server_receive_ns=second_rx + offset)
    assert est.estimate(second_rx).bandwidth_mbps == pytest.approx(6.0, rel=0.01)
    assert est.pair_samples == 1


def test_a_gain_smaller_than_the_margins_is_no_reason_to_switch():
    """latency_margin: under an accuracy SLA, a configuration 9 % faster than the one in force is
    not worth a switch (margin 10 %), a 0 margin takes it. accuracy_margin: under a latency SLA,
    one 0.003 more accurate is not worth it (margin 0.005), a 0 margin takes it."""
    t = LookupTable("var", "test", "top1", [
        LutEntry("a", "approxbit", 0.97, 4_000, 10, 1, 10, 5),        # 26 + 32/B ms
        LutEntry("b", "approxbit", 0.97, 2_000, 40, 1, 10, 5),        # 56 + 16/B ms
        LutEntry("edge_only", "edge_only", 0.90, 0, 400)])
    for margin, after in ((0.1, "a"), (0.0, "b")):
        c = ConfigurationChooser([t], ChooserSettings(min_dwell_s=5.0, latency_margin=margin))
        sla = Sla("accuracy", accuracy=0.95)
        assert c.choose(sla, LinkState(True, 2.0), 0.0).config_id == "a"          # 42 vs 64 ms
        d = c.choose(sla, LinkState(True, 0.4), 10.0)                               # 106 vs 96 ms
        assert d.config_id == after, margin
        assert ("nothing better by the margin" in d.reason) == (after == "a")
    t = LookupTable("var", "test", "top1", [
        LutEntry("x", "approxbit", 0.970, 1_000, 10, 1, 10, 5),       # 26 + 8/B ms
        LutEntry("y", "approxbit", 0.973, 10_000, 10, 1, 10, 5),      # 26 + 80/B ms
        LutEntry("edge_only", "edge_only", 0.90, 0, 400)])
    for margin, after in ((0.005, "x"), (0.0, "y")):
        c = ConfigurationChooser([t], ChooserSettings(min_dwell_s=5.0, accuracy_margin=margin))
        sla = Sla("latency", latency_ms=100)
        assert c.choose(sla, LinkState(True, 0.5), 0.0).config_id == "x"          # y: 186 ms
        assert c.choose(sla, LinkState(True, 2.0), 10.0).config_id == after, margin   # y: 66 ms fits


def test_the_doubling_re_entry_dwell_is_capped_at_max_dwell():
    """Left twice for violations, 'big' would wait 5 x 2^2 = 20 s; max_dwell_s 12 caps it."""
    c = chooser(max_dwell_s=12.0)
    sla = Sla("latency", latency_ms=100)
    assert c.choose(sla, LinkState(True, 50.0), 0.0).config_id == "big"
    assert c.choose(sla, LinkState(True, 2.0), 1.0).config_id == "mid"         # exit 1: dwell 10 s
    assert c.choose(sla, LinkState(True, 50.0), 11.0).config_id == "big"
    assert c.choose(sla, LinkState(True, 2.0), 12.0).config_id == "mid"        # exit 2: dwell 20 -> 12 s
    d = c.choose(sla, LinkState(True, 50.0), 23.0)
    assert d.config_id == "mid" and "dwell 12 s" in d.reason
    assert c.choose(sla, LinkState(True, 50.0), 24.0).config_id == "big"       # 12 s after the exit, not 20
