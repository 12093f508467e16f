"""What every server does with incoming payloads before decoding them: count, reject with a
reason, and track per-stream sequence numbers (gaps are losses; repeats and reordering are
refused, so no result is ever published twice; a sender that restarted and numbers from 0 again
is recognised by its later capture stamps).

Every payload is hostile until checked, so the per-stream state is bounded and cannot be
poisoned: at most ``StreamLimits.max_streams`` streams are tracked (idle ones expire), a capture
stamp far from the server's clock is refused, and so is a sequence jump no sender could have
made in the time its stamps say passed (a "sequence bomb" such as 2^64 - 1). Plain Python, no ROS.
"""
from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Dict, List, NamedTuple, Optional

SUPPORTED_FORMAT_VERSION = 1


class PayloadRejected(ValueError):
    """A payload refused before decoding; ``reason`` is a short counter key."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass
class PayloadCounters:
    received: int = 0
    accepted: int = 0
    rejected: int = 0
    lost: int = 0
    restarts: int = 0           # streams whose sender started numbering again (see SequenceTracker)
    expired: int = 0            # streams forgotten after StreamLimits.idle_timeout_s without a payload
    reasons: Dict[str, int] = field(default_factory=dict)

    def reject(self, reason: str, detail: str) -> PayloadRejected:
        """Count a rejection and return the exception to raise."""
        self.rejected += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1
        return PayloadRejected(reason, detail)


class Refusal(NamedTuple):
    reason: str                 # counter key: sequence, sequence_jump, stamp, streams
    detail: str


@dataclass(frozen=True)
class StreamLimits:
    """What a server accepts of a stream's sequence numbers and capture stamps, and how many
    streams it keeps state for (the servers' parameters of the same names)."""
    max_streams: int = 8                # streams tracked at once; a new one beyond is refused
    idle_timeout_s: float = 60.0        # a stream with no accepted payload for this long is forgotten
    max_seq_gap: int = 1000             # a forward jump beyond this ...
    max_seq_rate_hz: float = 1000.0     # ... plus this many per second of capture time is refused
    max_stamp_lead_s: float = 5.0       # capture stamps further ahead of the server clock are refused
    max_stamp_age_s: float = 60.0       # ... and further behind it (0: no age check, e.g. replayed bags)

    def __post_init__(self):
        checks = {"max_streams": self.max_streams >= 1, "idle_timeout_s": self.idle_timeout_s > 0,
                  "max_seq_gap": self.max_seq_gap >= 0, "max_seq_rate_hz": self.max_seq_rate_hz >= 0,
                  "max_stamp_lead_s": self.max_stamp_lead_s >= 0, "max_stamp_age_s": self.max_stamp_age_s >= 0}
        for name, ok in checks.items():
            value = getattr(self, name)
            if not ok or not math.isfinite(value):
                raise ValueError(f"stream limit {name} = {value} is out of range")


@dataclass
class _Stream:
    seq: int
    stamp_ns: int
    run_length: int             # payloads accepted since the stream (re)started
    seen: float                 # server monotonic time of the last accepted payload


class SequenceTracker:
    """Per-stream last sequence number and capture stamp, for at most ``limits.max_streams``
    streams.

    A sequence number at or below the last one is a repeated or reordered payload and is refused,
    unless its capture stamp is later than the last payload's: then the sender restarted (an edge
    node numbers from 0 again after a restart) and the stream starts over. Without this a server
    would refuse a restarted edge's payloads until their numbers passed the old ones. DDS delivers
    one writer's samples in order, so a payload of the old sender never arrives after a newer one.
    A stamp of 0 (unknown) never counts as later.

    Given the server's clock (``now_ns``), capture stamps more than ``max_stamp_lead_s`` ahead or
    ``max_stamp_age_s`` behind it are refused, so one payload stamped far in the future cannot
    block its stream (every later payload would look older). A forward jump larger than
    ``max_seq_gap + max_seq_rate_hz * (stamp - last stamp)`` is refused, so one payload numbered
    2^64 - 1 can neither count 1.8e19 losses nor make every later payload a repeat; a sender that
    was cut off for minutes still gets through, since its stamps moved on with its numbers.

    A stream with no accepted payload for ``idle_timeout_s`` is forgotten (``expire``, returned
    so the caller frees what it keeps per stream); while ``max_streams`` streams are live, a new
    stream id is refused: the streams already served keep their state.
    """

    #: a stream that starts over after fewer payloads than this is more likely two senders
    #: publishing the same stream id than an edge that restarted
    SHORT_RUN = 30

    def __init__(self, limits: Optional[StreamLimits] = None, clock: Callable[[], float] = time.monotonic):
        self.limits = limits or StreamLimits()
        self._clock = clock
        self._streams: "OrderedDict[str, _Stream]" = OrderedDict()     # least recently accepted first
        self._restart_note: Optional[str] = None

    @property
    def run_length(self) -> Dict[str, int]:
        return {k: s.run_length for k, s in self._streams.items()}

    def __contains__(self, stream_id: str) -> bool:
        return stream_id in self._streams

    def __len__(self) -> int:
        return len(self._streams)

    def expire(self) -> List[str]:
        """Forget the streams idle for longer than ``idle_timeout_s``; returns their ids."""
        cutoff = self._clock() - self.limits.idle_timeout_s
        gone = []
        while self._streams:
            sid, st = next(iter(self._streams.items()))
            if st.seen >= cutoff:
                break
            del self._streams[sid]
            gone.append(sid)
        return gone

    def check(self, stream_id: str, seq: int, stamp_ns: int = 0, now_ns: Optional[int] = None) -> Optional[Refusal]:
        """None when ``seq`` (captured at ``stamp_ns``; ``now_ns``: the server's clock, None to skip
        the stamp window) may be accepted, else why not. Call ``expire`` first."""
        lim = self.limits
        if now_ns is not None and stamp_ns:
            lead_s, age_s = (stamp_ns - now_ns) / 1e9, (now_ns - stamp_ns) / 1e9
            if lead_s > lim.max_stamp_lead_s:
                return Refusal("stamp", f"capture stamp {lead_s:.1f} s ahead of the server clock "
                                        f"(max_stamp_lead_s {lim.max_stamp_lead_s:g})")
            if lim.max_stamp_age_s and age_s > lim.max_stamp_age_s:
                return Refusal("stamp", f"capture stamp {age_s:.1f} s old (max_stamp_age_s {lim.max_stamp_age_s:g})")
        last = self._streams.get(stream_id)
        if last is None:
            if len(self._streams) >= lim.max_streams:
                return Refusal("streams", f"new stream '{stream_id[:64]}' while {len(self._streams)} streams are "
                                          f"live (max_streams {lim.max_streams})")
            return None
        if seq <= last.seq:
            if not stamp_ns > last.stamp_ns:
                return Refusal("sequence", f"seq {seq} after {last.seq} (duplicate or reordered)")
            return None                                  # the sender restarted
        span_s = max(0.0, (stamp_ns - last.stamp_ns) / 1e9) if stamp_ns and last.stamp_ns else 0.0
        allowed = lim.max_seq_gap + int(lim.max_seq_rate_hz * span_s)
        if seq - last.seq - 1 > allowed:
            return Refusal("sequence_jump", f"seq {seq} after {last.seq}: a gap of {seq - last.seq - 1} where at "
                                            f"most {allowed} fit the {span_s:.1f} s between their stamps")
        return None

    def restarts(self, stream_id: str, seq: int, stamp_ns: int = 0) -> bool:
        """Whether an acceptable ``seq`` starts the stream over (see the class docstring)."""
        last = self._streams.get(stream_id)
        return last is not None and seq <= last.seq and stamp_ns > last.stamp_ns

    def accept(self, stream_id: str, seq: int, stamp_ns: int = 0) -> int:
        """Record ``seq`` (``check`` said yes); returns how many payloads were lost before it (0
        when the stream starts or starts over)."""
        last = self._streams.pop(stream_id, None)
        starts = last is None or seq <= last.seq
        if last is not None and starts:                 # starts over (``check`` refused repeats)
            self._restart_note = self._restart_message(stream_id, seq, last.run_length)
        run = 1 if starts else last.run_length + 1
        self._streams[stream_id] = _Stream(seq, stamp_ns, run, self._clock())   # most recent last
        return 0 if starts else seq - last.seq - 1

    def pop_restart_note(self) -> Optional[str]:
        """What a server should log about the latest stream that started over, once; None if
        none did since the last call."""
        note, self._restart_note = self._restart_note, None
        return note

    def _restart_message(self, stream_id: str, seq: int, previous_run: int) -> str:
        text = (f"stream '{stream_id}' starts over at seq {seq} with a later capture stamp after "
                f"{previous_run} payloads: ")
        if previous_run < self.SHORT_RUN:
            return text + (f"its edge node restarted, or (restarting this often) two edges publish "
                           f"stream_id '{stream_id}': give each its own")
        return text + "its edge node restarted"


def check_finite(values, what: str = "payload") -> Optional[Refusal]:
    """None when every value of the numpy array ``values`` is finite, else a refusal."""
    import numpy as np

    bad = int(values.size - np.count_nonzero(np.isfinite(values)))
    return Refusal("nonfinite", f"{what} holds {bad} NaN/Inf values") if bad else None


def counters_dict(counters: PayloadCounters) -> Dict[str, int]:
    """Flat key -> value view of a server's counters (``/diagnostics``), reasons as ``rejected_<reason>``."""
    out = {k: v for k, v in vars(counters).items() if isinstance(v, int)}
    out.update({f"rejected_{k}": v for k, v in sorted(counters.reasons.items())})
    return out


__all__ = ["PayloadCounters", "PayloadRejected", "Refusal", "SequenceTracker", "StreamLimits",
           "SUPPORTED_FORMAT_VERSION", "check_finite", "counters_dict"]
