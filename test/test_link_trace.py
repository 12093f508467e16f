"""Bandwidth traces: the Fig. 9 pattern (levels, fluctuation bounds, seeded), CSV traces, and the
player applying steps in order at their times."""
import time

import pytest

from offload_common.link_trace import RateTrace, TracePlayer, fig9_trace


def test_fig9_trace_cycles_the_levels_within_the_fluctuation():
    tr = fig9_trace(segment_s=30, levels=(50, 3, 6), repeats=2, fluctuation=0.1, step_s=5, seed=1)
    assert tr.duration_s == pytest.approx(180)
    for t, level in ((1, 50), (31, 3), (61, 6), (91, 50), (125, 3), (179, 6)):
        assert abs(tr.rate_at(t) - level) <= 0.1 * level + 1e-9
    rates = [r for _, r in tr.steps]
    assert len(set(rates)) > 10                           # it fluctuates
    assert tr.steps == fig9_trace(segment_s=30, repeats=2, step_s=5, seed=1).steps
    assert tr.steps != fig9_trace(segment_s=30, repeats=2, step_s=5, seed=2).steps


def test_csv_trace_and_bad_rates(tmp_path):
    p = tmp_path / "modem.csv"
    p.write_text("time_s,mbps\n0,3.0\n# comment\n10,2.5\n20,6\n")
    tr = RateTrace.from_csv(str(p))
    assert tr.rate_at(5) == 3.0 and tr.rate_at(10) == 2.5 and tr.rate_at(99) == 6.0
    with pytest.raises(ValueError):
        RateTrace([(0, 3.0), (5, 0.0)])


def test_player_applies_every_step_in_order_at_its_time():
    seen = []
    player = TracePlayer(RateTrace([(0, 3.0), (0.2, 6.0), (0.4, 50.0)]), lambda r: seen.append((time.time(), r)))
    player.start()
    assert player.wait(5)
    assert [r for _, r in seen] == [3.0, 6.0, 50.0]
    assert seen[2][0] - seen[0][0] >= 0.39
    assert [r for _, r in player.applied] == [3.0, 6.0, 50.0]


def test_player_survives_a_failing_setter_and_stops_early():
    errors = []

    def flaky(rate):
        if rate == 6.0:
            raise RuntimeError("tc failed")

    player = TracePlayer(RateTrace([(0, 3.0), (0.05, 6.0), (0.1, 9.0), (30, 1.0)]), flaky, errors.append).start()
    time.sleep(0.5)
    player.stop()
    assert [r for _, r in player.applied] == [3.0, 9.0] and len(errors) == 1
