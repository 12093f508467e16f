"""When the link was down, so that results which waited out an outage do not teach the monitor
what a configuration costs.

A payload sent just before a cut is delivered after the restore: its latency measures the cut,
not the configuration. Left in the calibrator's window it keeps that configuration's predicted
tail above a latency SLA, and since a configuration that is not chosen produces no results, no
later result pushes it out: the monitor would never offload it again. ``OutageLog`` remembers
the intervals the link estimate was down (from the last receipt before the loss was noticed to
the first estimate that was up again; not the start-up, before the link was ever up); a result
captured before an outage ended and received after it began was in flight across it.

Pure Python, no ROS; times are integer nanoseconds of one clock.
"""
from __future__ import annotations

from collections import deque
from typing import Deque, List, Optional, Tuple


class OutageLog:
    def __init__(self, keep: int = 32):
        self._ended: Deque[Tuple[int, int]] = deque(maxlen=keep)     # (start_ns, end_ns), oldest first
        self._down_since: Optional[int] = None                       # start of the outage in progress
        self._was_up = False                                         # outages only of a link once up

    def update(self, up: bool, now_ns: int, since_last_receipt_s: Optional[float] = None) -> None:
        """The estimate at ``now_ns``; an outage noticed now began at the last receipt
        (``since_last_receipt_s`` before now), or now when there was none."""
        if not up and self._down_since is None and self._was_up:
            back = int((since_last_receipt_s or 0.0) * 1e9)
            self._down_since = now_ns - max(0, back)
        elif up and self._down_since is not None:
            self._ended.append((self._down_since, now_ns))
            self._down_since = None
        self._was_up = self._was_up or up

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def intervals(self) -> List[Tuple[int, Optional[int]]]:
        """(start_ns, end_ns) of every outage remembered; end None for one still in progress."""
        return list(self._ended) + ([(self._down_since, None)] if self._down_since is not None else [])

    def crossed(self, captured_ns: int, received_ns: int) -> bool:
        """Whether a result captured at ``captured_ns`` and received at ``received_ns`` was in
        flight during an outage."""
        return any(captured_ns < (end if end is not None else received_ns + 1) and received_ns > start
                   for start, end in self.intervals())


__all__ = ["OutageLog"]
