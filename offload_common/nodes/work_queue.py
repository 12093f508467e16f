"""A small drop-oldest queue between a subscription callback and a worker thread: the callback
never blocks, the worker always gets the newest items."""
from __future__ import annotations

import queue


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
