"""What every server does with incoming payloads before decoding them: count, reject with a
reason, and track per-stream sequence numbers (gaps are losses; repeats and reordering are
refused, so no result is ever published twice; a sender that restarted and numbers from 0 again
is recognised by its later capture stamps). Plain Python, no ROS."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

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
    reasons: Dict[str, int] = field(default_factory=dict)

    def reject(self, reason: str, detail: str) -> PayloadRejected:
        """Count a rejection and return the exception to raise."""
        self.rejected += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1
        return PayloadRejected(reason, detail)


class SequenceTracker:
    """Per-stream last sequence number and capture stamp.

    A sequence number at or below the last one is a repeated or reordered payload and is refused,
    unless its capture stamp is later than the last payload's: then the sender restarted (an edge
    node numbers from 0 again after a restart) and the stream starts over. Without this a server
    would refuse a restarted edge's payloads until their numbers passed the old ones. DDS delivers
    one writer's samples in order, so a payload of the old sender never arrives after a newer one.
    A stamp of 0 (unknown) never counts as later."""

    #: a stream that starts over after fewer payloads than this is more likely two senders
    #: publishing the same stream id than an edge that restarted
    SHORT_RUN = 30

    def __init__(self):
        self.last: Dict[str, Tuple[int, int]] = {}       # stream -> (seq, capture stamp ns)
        self.run_length: Dict[str, int] = {}             # payloads accepted since the stream (re)started
        self._restart_note: Optional[str] = None

    def check(self, stream_id: str, seq: int, stamp_ns: int = 0) -> Optional[str]:
        """None when ``seq`` may be accepted, else why not (duplicate / reordered)."""
        last = self.last.get(stream_id)
        if last is not None and seq <= last[0] and not stamp_ns > last[1]:
            return f"seq {seq} after {last[0]} (duplicate or reordered)"
        return None

    def restarts(self, stream_id: str, seq: int, stamp_ns: int = 0) -> bool:
        """Whether an acceptable ``seq`` starts the stream over (see the class docstring)."""
        last = self.last.get(stream_id)
        return last is not None and seq <= last[0] and stamp_ns > last[1]

    def accept(self, stream_id: str, seq: int, stamp_ns: int = 0) -> int:
        """Record ``seq``; returns how many payloads were lost before it (0 when the stream starts
        or starts over)."""
        last = self.last.get(stream_id)
        starts = last is None or seq <= last[0]
        if last is not None and starts:                 # starts over (``check`` refused repeats)
            self._restart_note = self._restart_message(stream_id, seq, self.run_length[stream_id])
        self.last[stream_id] = (seq, stamp_ns)
        self.run_length[stream_id] = 1 if starts else self.run_length[stream_id] + 1
        return 0 if starts else seq - last[0] - 1

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
