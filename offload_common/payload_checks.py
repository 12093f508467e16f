"""What every server does with incoming payloads before decoding them: count, reject with a
reason, and track per-stream sequence numbers (gaps are losses; repeats and reordering are
refused, so no result is ever published twice). Plain Python, no ROS."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional

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
    reasons: Dict[str, int] = field(default_factory=dict)

    def reject(self, reason: str, detail: str) -> PayloadRejected:
        """Count a rejection and return the exception to raise."""
        self.rejected += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1
        return PayloadRejected(reason, detail)


class SequenceTracker:
    """Per-stream last sequence number."""

    def __init__(self):
        self.last: Dict[str, int] = {}

    def check(self, stream_id: str, seq: int) -> Optional[str]:
        """None when ``seq`` may be accepted, else why not (duplicate / reordered)."""
        last = self.last.get(stream_id)
        if last is not None and seq <= last:
            return f"seq {seq} after {last} (duplicate or reordered)"
        return None

    def accept(self, stream_id: str, seq: int) -> int:
        """Record ``seq``; returns how many payloads were lost before it."""
        last = self.last.get(stream_id)
        self.last[stream_id] = seq
        return 0 if last is None else max(0, seq - last - 1)
