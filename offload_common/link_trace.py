"""Bandwidth traces for emulated links, and a player that applies one over time.

A :class:`RateTrace` is a list of steps (start time, Mbit/s). :func:`fig9_trace` builds the
pattern of ApproxBit's Fig. 9: segments at 50, 3 and 6 Mbit/s, each fluctuating around its level
(seeded), repeated. Traces also load from a CSV of ``time_s,mbps`` rows (e.g. a log from a real
satellite modem). :class:`TracePlayer` calls a setter (``EmulatedLink.set_rate``) at each step
from a background thread and keeps what it applied, with timestamps, for the plots.
"""
from __future__ import annotations

import csv
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np


@dataclass
class RateTrace:
    steps: List[Tuple[float, float]] = field(default_factory=list)   # (start s, Mbit/s), sorted

    def __post_init__(self):
        self.steps = sorted((float(t), float(r)) for t, r in self.steps)
        for t, r in self.steps:
            if r <= 0:
                raise ValueError(f"rate at {t:g} s must be > 0 Mbit/s (cut links with set_up)")

    @property
    def duration_s(self) -> float:
        return self.steps[-1][0] if self.steps else 0.0

    def rate_at(self, t: float) -> float:
        """The rate in force at ``t`` seconds (the first step's before it starts)."""
        rate = self.steps[0][1]
        for start, r in self.steps:
            if start > t:
                break
            rate = r
        return rate

    @classmethod
    def from_csv(cls, path: str) -> "RateTrace":
        with open(path, newline="") as f:
            rows = [r for r in csv.reader(f) if r and not r[0].lstrip().startswith("#")]
        if rows and not _is_number(rows[0][0]):
            rows = rows[1:]                              # header
        return cls([(float(t), float(r)) for t, r, *_ in rows])


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def fig9_trace(segment_s: float = 60.0, levels: Sequence[float] = (50.0, 3.0, 6.0), repeats: int = 2,
               fluctuation: float = 0.1, step_s: float = 5.0, seed: int = 0) -> RateTrace:
    """``levels`` in turn for ``segment_s`` each, ``repeats`` times; within a segment the rate
    changes every ``step_s`` to level x (1 + u), u uniform in [-fluctuation, +fluctuation]."""
    rng = np.random.default_rng(seed)
    steps, t = [], 0.0
    for _ in range(repeats):
        for level in levels:
            end = t + segment_s
            while t < end - 1e-9:
                steps.append((t, round(level * (1 + rng.uniform(-fluctuation, fluctuation)), 3)))
                t += min(step_s, end - t)
    steps.append((t, steps[-1][1]))                       # marks the end
    return RateTrace(steps)


class TracePlayer:
    """Apply ``trace`` through ``set_rate(mbps)`` in real time, from a background thread."""

    def __init__(self, trace: RateTrace, set_rate: Callable[[float], None],
                 on_error: Optional[Callable[[Exception], None]] = None):
        self.trace, self.set_rate, self.on_error = trace, set_rate, on_error
        self.applied: List[Tuple[float, float]] = []     # (wall time, Mbit/s)
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.t0: Optional[float] = None

    def start(self, t0: Optional[float] = None) -> "TracePlayer":
        """Play from wall time ``t0`` (default: now)."""
        self.t0 = time.time() if t0 is None else t0
        self._thread = threading.Thread(target=self._run, name="trace-player", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        for start, mbps in self.trace.steps:
            if self._stop.wait(max(0.0, self.t0 + start - time.time())):
                return
            try:
                self.set_rate(mbps)
                self.applied.append((time.time(), mbps))
            except Exception as e:                      # keep playing; the caller decides
                if self.on_error:
                    self.on_error(e)

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Block until the trace has been played (True) or ``timeout`` passed (False)."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
