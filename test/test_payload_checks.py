"""Per-stream state a hostile sender cannot poison or grow: stamps far from the server clock are
refused, a sequence bomb (2^64 - 1) is refused after a stream started and cannot block it when it
comes first, a long outage still gets through, at most ``max_streams`` streams are kept and idle
ones expire, losses never exceed what the stamps allow. A fuzz run drives the tracker with
generated (stream, seq, stamp) triples and checks those bounds after every payload."""
import math

import numpy as np
import pytest

from offload_common.payload_checks import SequenceTracker, StreamLimits, check_finite, counters_dict, PayloadCounters

S = 1_000_000_000                      # ns per second
NOW = 1_800_000_000 * S                # a server clock reading (2027)
BOMB = 2**64 - 1


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def admit(t: SequenceTracker, stream, seq, stamp, now=NOW):
    """check + accept as a server does; returns the refusal reason or the losses counted."""
    why = t.check(stream, seq, stamp, now)
    if why:
        return why.reason
    return t.accept(stream, seq, stamp)


def test_stamps_far_from_the_server_clock_are_refused():
    t = SequenceTracker(StreamLimits(max_stamp_lead_s=5, max_stamp_age_s=60))
    assert admit(t, "var", 0, NOW + 6 * S) == "stamp"             # from the future
    assert admit(t, "var", 0, NOW - 61 * S) == "stamp"            # too old (a replay)
    assert admit(t, "var", 0, NOW + 4 * S) == 0
    assert admit(t, "var", 0, NOW - 59 * S) == "sequence"         # in the window, but not later: a repeat
    assert t.check("var", 2, NOW + 100 * S, now_ns=None) is None  # no clock given: no window
    t0 = SequenceTracker(StreamLimits(max_stamp_age_s=0))         # 0: no age limit (replayed bags)
    assert admit(t0, "var", 0, 1_000) == 0


def test_a_far_future_stamp_cannot_block_its_stream():
    """Before the window, one payload stamped a year ahead made every later payload 'older', so
    the stream was refused until the server restarted."""
    t = SequenceTracker()
    assert admit(t, "var", 10, NOW) == 0
    assert admit(t, "var", BOMB, NOW + 365 * 86400 * S) == "stamp"
    assert admit(t, "var", 11, NOW + S // 10) == 0                # the real edge goes on


def test_a_sequence_bomb_after_a_stream_started_is_refused_and_counts_no_losses():
    t = SequenceTracker()
    for seq in range(5):
        assert admit(t, "var", seq, NOW + seq * S // 10) == 0
    assert admit(t, "var", BOMB, NOW + S) == "sequence_jump"
    assert admit(t, "var", 5, NOW + S) == 0                       # not blocked
    assert admit(t, "var", 7, NOW + 2 * S) == 1                   # a real loss still counts


def test_a_sequence_bomb_that_opens_a_stream_blocks_it_only_until_the_stamps_pass():
    """The first payload of a stream may carry any number (the edge may have run for days).
    A hostile first payload numbered 2^64 - 1 makes the real edge's payloads look like repeats
    only until their stamps pass its stamp, which the window keeps within max_stamp_lead_s."""
    t = SequenceTracker(StreamLimits(max_stamp_lead_s=2))
    assert admit(t, "var", BOMB, NOW + 2 * S) == 0
    assert admit(t, "var", 0, NOW + S) == "sequence"
    later = NOW + 2 * S + 1                                       # 2 s on: the real edge's stamps pass it
    assert admit(t, "var", 1, later, now=later) == 0              # later stamp: the stream starts over
    assert admit(t, "var", 2, later + 1, now=later) == 0


def test_a_long_outage_still_gets_through():
    t = SequenceTracker()
    assert admit(t, "det", 100, NOW) == 0
    # 10 minutes at 30 fps: 18,000 numbers the server never saw, stamped 600 s later
    assert admit(t, "det", 18_100, NOW + 600 * S, now=NOW + 600 * S) == 17_999
    # the same jump stamped 1 s later is impossible at 1000 payloads/s
    t2 = SequenceTracker()
    assert admit(t2, "det", 100, NOW) == 0
    assert admit(t2, "det", 18_100, NOW + S) == "sequence_jump"


def test_streams_are_bounded_and_idle_ones_expire():
    clock = FakeClock()
    t = SequenceTracker(StreamLimits(max_streams=3, idle_timeout_s=10), clock=clock)
    for i in range(3):
        assert admit(t, f"s{i}", 0, NOW) == 0
    assert admit(t, "intruder", 0, NOW) == "streams"              # full: the streams served keep their state
    clock.t = 5.0
    assert admit(t, "s0", 1, NOW + 1) == 0                        # s0 stays active
    clock.t = 12.0
    assert t.expire() == ["s1", "s2"] and len(t) == 1
    assert admit(t, "intruder", 0, NOW) == 0
    assert "s0" in t and "s1" not in t


def test_fuzzed_streams_keep_every_bound():
    rng = np.random.default_rng(7)
    clock = FakeClock()
    lim = StreamLimits(max_streams=5, idle_timeout_s=3, max_seq_gap=50, max_seq_rate_hz=100)
    t = SequenceTracker(lim, clock=clock)
    reasons = set()
    last_accepted = {}
    for i in range(20_000):
        clock.t += float(rng.exponential(0.01))
        t.expire()
        stream = f"s{rng.integers(0, 12)}" if rng.random() < 0.3 else f"s{rng.integers(0, 3)}"
        kind = rng.integers(0, 6)
        prev = last_accepted.get(stream, (0, NOW))
        seq = [prev[0] + 1, int(rng.integers(0, 2**63)), BOMB, max(0, prev[0] - 3),
               prev[0] + int(rng.integers(1, 400)), 0][kind]
        stamp = NOW + int(rng.normal(0, 30) * S) if rng.random() < 0.2 else prev[1] + int(rng.integers(0, S // 5))
        now = NOW + int(clock.t * S)
        out = admit(t, stream, seq, stamp, now)
        if isinstance(out, str):
            reasons.add(out)
            continue
        if stream in last_accepted and seq > last_accepted[stream][0]:
            span = max(0.0, (stamp - last_accepted[stream][1]) / S)
            assert out <= lim.max_seq_gap + lim.max_seq_rate_hz * span
        assert -lim.max_stamp_age_s * S <= stamp - now <= lim.max_stamp_lead_s * S
        assert len(t) <= lim.max_streams
        last_accepted[stream] = (seq, stamp)
    assert {"stamp", "sequence", "sequence_jump", "streams"} <= reasons


def test_limits_must_be_finite_and_in_range():
    for bad in (dict(max_streams=0), dict(idle_timeout_s=math.nan), dict(max_stamp_lead_s=-1),
                dict(max_seq_rate_hz=math.inf)):
        with pytest.raises(ValueError, match="out of range"):
            StreamLimits(**bad)


def test_finite_check_and_counters():
    assert check_finite(np.ones(4, np.float32)) is None
    refusal = check_finite(np.array([1.0, np.nan, np.inf, -np.inf], np.float32))
    assert refusal.reason == "nonfinite" and "3 NaN/Inf" in refusal.detail
    c = PayloadCounters()
    c.reject("shape", "x")
    c.reject("shape", "y")
    assert counters_dict(c)["rejected"] == 2 and counters_dict(c)["rejected_shape"] == 2
