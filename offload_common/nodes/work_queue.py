"""Small queues between a subscription callback and a worker thread: the callback never blocks,
the worker always gets the newest items (``DropOldestWorker`` for an edge's frames,
``NewestPerStreamWorker`` for a server's payloads)."""
from __future__ import annotations

import queue
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Optional


def put_dropping_oldest(q: "queue.Queue", item) -> int:
    """Put ``item``; if the queue is full, drop the oldest first. Returns items dropped (0/1)."""
    try:
        q.put_nowait(item)
        return 0
    except queue.Full:
        dropped = 0
        try:
            q.get_nowait()
            dropped = 1
        except queue.Empty:
            pass
        q.put_nowait(item)
        return dropped


class _WorkerThread:
    """A daemon thread that takes items (``_next``: one, or None after a short wait) and calls
    ``handle`` on each; an exception is counted (``failed``) and logged as "<what> <failure>",
    and the thread goes on: a dead worker would stop the stream for good. With ``alive`` given
    (the node's ``rclpy.ok(context=...)``), an exception once it is False is the node shutting
    down under the thread (publishing on a context already shut down): the thread stops quietly."""

    _failure = "failed"

    def __init__(self, handle: Callable, logger, what: str, alive: Optional[Callable[[], bool]] = None):
        self.failed = 0
        self._handle, self._logger, self._what, self._alive = handle, logger, what, alive
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _next(self):
        raise NotImplementedError

    def _call(self, item) -> None:
        self._handle(item)

    def _run(self) -> None:
        while not self._stop.is_set():
            item = self._next()
            if item is None:
                continue
            try:
                self._call(item)
            except Exception as exc:  # keep serving
                if self._alive is not None and not self._alive():
                    self._stop.set()
                    return
                self.failed += 1
                self._logger.error(f"{self._what} {self._failure} ({self.failed} so far): {type(exc).__name__}: {exc}")

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._thread.join(timeout=timeout)


class DropOldestWorker(_WorkerThread):
    """A drop-oldest queue and the daemon thread that empties it. ``put`` never blocks: the oldest
    item makes room (counted in ``dropped``). The thread calls ``handle(*item)`` for each item; an
    exception is counted (``failed``) and logged as "<what> not sent", and the thread goes on."""

    _failure = "not sent"

    def __init__(self, handle: Callable[..., None], logger, what: str, maxsize: int,
                 alive: Optional[Callable[[], bool]] = None):
        super().__init__(handle, logger, what, alive)
        self.queue: "queue.Queue" = queue.Queue(maxsize=max(1, maxsize))
        self.dropped = 0
        self._thread.start()

    def put(self, *item) -> None:
        self.dropped += put_dropping_oldest(self.queue, item)

    def _next(self):
        try:
            return self.queue.get(timeout=0.1)
        except queue.Empty:
            return None

    def _call(self, item) -> None:
        self._handle(*item)


@dataclass
class Pending:
    """An item waiting in a ``NewestPerStreamWorker``: ``skipped`` items of its stream were
    replaced while waiting since the stream's previous item was served."""
    item: Any
    skipped: int
    since: float                # time.perf_counter() when it was put


class NewestPerStreamWorker(_WorkerThread):
    """Load shedding for a server: per stream, only the newest item waits. ``put`` replaces a
    waiting item of the same stream (counted in ``superseded``); the daemon thread serves the
    waiting items oldest first, calling ``handle(pending)`` (``Pending``: the item, how many of
    its stream were skipped before it, and when it was put). A server that keeps up serves every
    item; one that falls behind serves the newest of each stream instead of a growing backlog.
    Memory is one item per stream: the caller bounds the streams. Exceptions are counted
    (``failed``), logged as "<what> failed", and the thread goes on."""

    def __init__(self, handle: Callable[[Pending], None], logger, what: str,
                 alive: Optional[Callable[[], bool]] = None):
        super().__init__(handle, logger, what, alive)
        self.superseded = 0
        self.served = 0
        self._pending: "OrderedDict[str, Pending]" = OrderedDict()
        self._cv = threading.Condition()
        self._thread.start()

    def put(self, stream_id: str, item) -> None:
        with self._cv:
            old = self._pending.pop(stream_id, None)
            skipped = 0 if old is None else old.skipped + 1
            self.superseded += old is not None
            self._pending[stream_id] = Pending(item, skipped, time.perf_counter())
            self._cv.notify()

    def waiting(self) -> int:
        with self._cv:
            return len(self._pending)

    def _next(self) -> Optional[Pending]:
        with self._cv:
            if not self._pending:
                self._cv.wait(timeout=0.1)
            if not self._pending:
                return None
            return self._pending.popitem(last=False)[1]

    def _call(self, pending: Pending) -> None:
        self._handle(pending)
        self.served += 1
