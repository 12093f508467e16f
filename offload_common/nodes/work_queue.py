"""A small drop-oldest queue between a subscription callback and a worker thread: the callback
never blocks, the worker always gets the newest items."""
from __future__ import annotations

import queue
import threading
from typing import Callable


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


class DropOldestWorker:
    """A drop-oldest queue and the daemon thread that empties it. ``put`` never blocks: the oldest
    item makes room (counted in ``dropped``). The thread calls ``handle(*item)`` for each item; an
    exception is counted (``failed``) and logged as "<what> not sent", and the thread goes on: a
    dead worker would stop the stream for good."""

    def __init__(self, handle: Callable[..., None], logger, what: str, maxsize: int):
        self.queue: "queue.Queue" = queue.Queue(maxsize=max(1, maxsize))
        self.dropped = 0
        self.failed = 0
        self._handle, self._logger, self._what = handle, logger, what
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def put(self, *item) -> None:
        self.dropped += put_dropping_oldest(self.queue, item)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                item = self.queue.get(timeout=0.1)
            except queue.Empty:
                continue
            try:
                self._handle(*item)
            except Exception as exc:  # keep serving
                self.failed += 1
                self._logger.error(f"{self._what} not sent ({self.failed} so far): {type(exc).__name__}: {exc}")

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._thread.join(timeout=timeout)
