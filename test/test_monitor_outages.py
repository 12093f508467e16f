"""OutageLog: results in flight while the link estimate was down are recognised (so the monitor
does not calibrate from them); results before, after or beside an outage are not; the start-up,
before the link was ever up, is no outage."""
from offload_common.monitor.outages import OutageLog

S = 1_000_000_000


def test_results_in_flight_across_an_outage_are_recognised():
    log = OutageLog()
    log.update(False, 1 * S)                      # start-up: never up yet
    log.update(True, 2 * S)
    assert log.intervals() == [] and not log.crossed(0, 3 * S)
    log.update(True, 10 * S)
    log.update(False, 11 * S, since_last_receipt_s=1.0)     # noticed at 11 s, last receipt at 10 s
    assert log.down and log.intervals() == [(10 * S, None)]
    assert log.crossed(int(9.9 * S), int(10.5 * S))          # sent before, arriving during the outage
    log.update(False, 12 * S, since_last_receipt_s=2.0)     # still the same outage
    log.update(True, 18 * S)
    assert not log.down and log.intervals() == [(10 * S, 18 * S)]
    assert log.crossed(int(9.95 * S), int(18.3 * S))         # sent before the cut, delivered after the restore
    assert log.crossed(12 * S, 19 * S)                       # captured during the outage
    assert not log.crossed(int(9.0 * S), int(9.1 * S))       # delivered before it
    assert not log.crossed(int(18.1 * S), int(18.2 * S))     # captured after it
    log.update(False, 30 * S)                                # no receipt age known: from now
    log.update(True, 31 * S)
    assert log.intervals()[-1] == (30 * S, 31 * S)
    assert not log.crossed(20 * S, 21 * S)


def test_only_the_latest_outages_are_kept():
    log = OutageLog(keep=2)
    log.update(True, 0)
    for k in range(3):
        log.update(False, (10 * k + 1) * S)
        log.update(True, (10 * k + 2) * S)
    assert log.intervals() == [(11 * S, 12 * S), (21 * S, 22 * S)]
