"""The edge nodes' drop-oldest worker: put never blocks and drops the oldest item when full, the
thread handles the rest in order, and an item whose handler raises is counted and logged while
the thread goes on."""
import queue
import threading
import time

from offload_common.nodes.work_queue import DropOldestWorker, put_dropping_oldest


class Log:
    def __init__(self):
        self.errors = []

    def error(self, text):
        self.errors.append(text)


def test_put_dropping_oldest_keeps_the_newest():
    q = queue.Queue(maxsize=2)
    assert [put_dropping_oldest(q, i) for i in range(4)] == [0, 0, 1, 1]
    assert [q.get_nowait(), q.get_nowait()] == [2, 3]


def test_worker_drops_the_oldest_survives_a_failing_item_and_stops():
    gate, handled, log = threading.Event(), [], Log()

    def handle(item, tag):
        gate.wait(5)
        if item == 3:
            raise ValueError("bad item")
        handled.append((item, tag))

    worker = DropOldestWorker(handle, log, "frame", maxsize=2)
    worker.put(0, "a")
    time.sleep(0.3)                    # the thread holds item 0 at the gate
    for i in range(1, 6):
        worker.put(i, "a")             # it holds 2: putting 3, 4, 5 drops 1, 2, 3
    assert worker.dropped == 3
    gate.set()
    deadline = time.monotonic() + 5
    while len(handled) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert handled == [(0, "a"), (4, "a"), (5, "a")] and worker.failed == 0
    worker.put(3, "b")
    worker.put(6, "b")
    while len(handled) < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert handled[-1] == (6, "b") and worker.failed == 1
    assert log.errors == ["frame not sent (1 so far): ValueError: bad item"]
    worker.stop()
    assert not worker._thread.is_alive()
