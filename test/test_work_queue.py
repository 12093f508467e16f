"""The edge nodes' drop-oldest worker: put never blocks and drops the oldest item when full, the
thread handles the rest in order, and an item whose handler raises is counted and logged while
the thread goes on. The servers' newest-per-stream worker: only the newest item of each stream
waits, the skipped ones are counted per stream, streams are served oldest first."""
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
    gate, entered, handled, log = threading.Event(), threading.Event(), [], Log()

    def handle(item, tag):
        entered.set()
        gate.wait(5)
        if item == 3:
            raise ValueError("bad item")
        handled.append((item, tag))

    worker = DropOldestWorker(handle, log, "frame", maxsize=2)
    worker.put(0, "a")
    assert entered.wait(5)             # the thread holds item 0 at the gate
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


def test_newest_per_stream_worker_serves_the_newest_of_each_stream_and_counts_the_rest():
    from offload_common.nodes.work_queue import NewestPerStreamWorker

    entered, gate, served, log = threading.Event(), threading.Event(), [], Log()

    def handle(p):
        entered.set()
        gate.wait(5)
        if p.item == "bad":
            raise RuntimeError("model failed")
        served.append((p.item, p.skipped))

    worker = NewestPerStreamWorker(handle, log, "detection")
    worker.put("a", "a0")
    assert entered.wait(5)                       # the thread holds a0 at the gate
    for item in ("a1", "a2", "a3"):
        worker.put("a", item)                    # only the newest of stream a waits
    worker.put("b", "b0")
    worker.put("b", "b1")
    assert worker.superseded == 3 and worker.waiting() == 2
    gate.set()
    deadline = time.monotonic() + 5
    while len(served) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert served == [("a0", 0), ("a3", 2), ("b1", 1)]     # streams oldest first; skipped counted per stream
    worker.put("a", "bad")
    while worker.failed < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    worker.put("a", "a4")                        # a failing item is counted and the thread goes on
    while len(served) < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert served[-1] == ("a4", 0) and worker.failed == 1 and worker.served == 4
    assert log.errors == ["detection failed (1 so far): RuntimeError: model failed"]
    worker.stop()
    assert not worker._thread.is_alive()


def test_a_failure_while_the_node_shuts_down_stops_the_worker_quietly():
    """Publishing from the worker after the context was shut down (SIGINT under a running item)
    is not an error to log: with ``alive`` False the thread stops without one; with it True the
    same failure is counted and logged."""
    alive, log = [True], Log()

    def handle(item):
        raise RuntimeError("Failed to publish: publisher's context is invalid")

    worker = DropOldestWorker(handle, log, "frame", maxsize=2, alive=lambda: alive[0])
    worker.put(1)
    deadline = time.monotonic() + 5
    while worker.failed < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert worker.failed == 1 and len(log.errors) == 1 and worker._thread.is_alive()
    alive[0] = False
    worker.put(2)
    worker._thread.join(5)
    assert not worker._thread.is_alive() and worker.failed == 1 and len(log.errors) == 1
