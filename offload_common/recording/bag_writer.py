"""A recording folder of rosbag2 bags in MCAP storage, written through ``rosbags``: one bag per
split (``split_0000``, ``split_0001``, ...), each complete with its ``metadata.yaml`` once closed,
so ``ros2 bag info``, Foxglove, rosbags and the ``mcap`` tools open any of them.

Messages arrive already serialized (CDR, as a raw ROS 2 subscription delivers them) and are
written unchanged. A split ends when it holds ``split_bytes`` or spans ``split_duration_s``.
``flush()`` (the recorder calls it every ``flush_period_s``) closes the MCAP chunk being filled
and fsyncs the file, so a crash or power cut loses at most the messages since the last flush: the
split it interrupts has no summary or metadata.yaml, and :mod:`bag_reader` still reads every
chunk written before. Memory stays bounded by one chunk (rosbags closes a chunk at 1 MiB) and a
split's chunk index. Payload topics share ``payload_budget_bytes`` for the whole recording; past
it their messages are counted and dropped, the rest are still written.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Optional

SPLIT_PREFIX = "split_"


@dataclass
class RecordingStats:
    messages: Dict[str, int] = field(default_factory=dict)      # topic -> messages written
    bytes_written: int = 0                                      # serialized message bytes, all splits
    payload_bytes: int = 0                                      # of which payload topics
    payloads_over_budget: int = 0                               # payload messages dropped by the budget
    splits: int = 0


class SplitBagWriter:
    def __init__(self, folder: str, typestore, *, split_bytes: int = 256 << 20, split_duration_s: float = 600.0,
                 payload_budget_bytes: int = 0, compress: bool = False,
                 clock_ns: Callable[[], int] = time.time_ns):
        if split_bytes < 1 << 16:
            raise ValueError(f"split_bytes must be at least 64 KiB, not {split_bytes}")
        if split_duration_s <= 0:
            raise ValueError(f"split_duration_s must be > 0, not {split_duration_s}")
        self.folder = Path(folder)
        if self.folder.exists() and any(self.folder.iterdir()):
            raise FileExistsError(f"recording folder {folder} exists and is not empty; choose a new one")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.typestore = typestore
        self.split_bytes, self.split_duration_ns = int(split_bytes), int(split_duration_s * 1e9)
        self.payload_budget_bytes = int(payload_budget_bytes)
        self.compress = compress
        self.clock_ns = clock_ns
        self.topics: Dict[str, tuple] = {}                  # topic -> (msgtype, payload?)
        self.stats = RecordingStats()
        self._writer = None
        self._connections: Dict[str, object] = {}
        self._split_bytes = 0
        self._split_start_ns: Optional[int] = None

    def add_topic(self, topic: str, msgtype: str, *, payload: bool = False) -> None:
        if msgtype not in self.typestore.fielddefs:
            raise KeyError(f"unknown message type {msgtype!r} for topic {topic}")
        self.topics[topic] = (msgtype, payload)
        self.stats.messages.setdefault(topic, 0)

    def write(self, topic: str, data: bytes, log_time_ns: Optional[int] = None) -> bool:
        """Writes one serialized message; False when the payload budget dropped it."""
        msgtype, payload = self.topics[topic]
        if payload and self.payload_budget_bytes and self.stats.payload_bytes + len(data) > self.payload_budget_bytes:
            self.stats.payloads_over_budget += 1
            return False
        t = self.clock_ns() if log_time_ns is None else int(log_time_ns)
        if self._writer is None or self._split_bytes + len(data) > self.split_bytes \
                or t - self._split_start_ns >= self.split_duration_ns:
            self._next_split(t)
        conn = self._connections.get(topic)
        if conn is None:
            conn = self._connections[topic] = self._writer.add_connection(topic, msgtype, typestore=self.typestore)
        self._writer.write(conn, t, data)
        self._split_bytes += len(data)
        self.stats.bytes_written += len(data)
        self.stats.messages[topic] += 1
        if payload:
            self.stats.payload_bytes += len(data)
        return True

    def _next_split(self, t_ns: int) -> None:
        from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer

        self._close_split()
        writer = Writer(self.folder / f"{SPLIT_PREFIX}{self.stats.splits:04d}", version=Writer.VERSION_LATEST,
                        storage_plugin=StoragePlugin.MCAP)
        if self.compress:
            writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
        writer.open()
        self._writer, self._connections = writer, {}
        self._split_bytes, self._split_start_ns = 0, t_ns
        self.stats.splits += 1

    def flush(self) -> None:
        """Puts every message written so far on disk as whole MCAP chunks (fsynced)."""
        if self._writer is None:
            return
        storage = self._writer.storage
        if storage.chunk.msgs:                  # rosbags' McapWriter: the chunk being filled
            storage.close_chunk()
        storage.bio.flush()
        os.fsync(storage.bio.fileno())

    def _close_split(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def close(self) -> RecordingStats:
        self._close_split()
        return self.stats
