"""Reading a recording back: a recording folder (``split_*`` bags, as ``offload_recorder``
writes), one rosbag2 bag folder, or one ``.mcap`` file. Closed splits are read with ``rosbags``;
a split a crash left open (no metadata.yaml, no MCAP summary) is read chunk by chunk with the
``mcap`` package's stream reader up to where the file ends, and decoded with the same type store.
"""
from __future__ import annotations

import glob
import heapq
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Sequence

from offload_common.recording.bag_writer import SPLIT_PREFIX
from offload_common.recording.message_types import typestore as default_typestore


class RecordingError(Exception):
    pass


@dataclass
class RecordedMessage:
    topic: str
    msgtype: str
    log_time_ns: int          # when the recorder received it
    raw: bytes                # serialized (CDR)
    msg: object               # decoded (rosbags dataclass; field names as the .msg files)


def bag_paths(path: str) -> List[Path]:
    """The bags of a recording: its ``split_*`` folders in order, or the path itself."""
    p = Path(path)
    if not p.exists():
        raise RecordingError(f"no recording at {path}")
    if p.is_dir():
        splits = sorted(d for d in p.iterdir() if d.is_dir() and d.name.startswith(SPLIT_PREFIX))
        if splits:
            return splits
        if (p / "metadata.yaml").exists() or glob.glob(str(p / "*.mcap")):
            return [p]
        raise RecordingError(f"{path} holds no bag (no split_* folders, metadata.yaml or .mcap file)")
    return [p]


def read_recording(path: str, topics: Optional[Sequence[str]] = None, store=None,
                   decode: bool = True) -> Iterator[RecordedMessage]:
    """Every message of the recording (only ``topics`` when given), in receive-time order;
    without ``decode`` its ``msg`` is None (counting, copying)."""
    store = store or default_typestore()
    streams = [_read_bag(b, topics, store, decode) for b in bag_paths(path)]
    yield from heapq.merge(*streams, key=lambda m: m.log_time_ns)


def _read_bag(bag: Path, topics, store, decode: bool = True) -> Iterator[RecordedMessage]:
    closed = bag.is_dir() and (bag / "metadata.yaml").exists()
    if closed:
        yield from _read_closed(bag, topics, store, decode)
    else:
        files = [bag] if bag.is_file() else sorted(bag.glob("*.mcap"))
        for f in files:
            yield from _read_open(f, topics, store, decode)


def _read_closed(bag: Path, topics, store, decode: bool = True) -> Iterator[RecordedMessage]:
    from rosbags.highlevel import AnyReader

    try:
        reader = AnyReader([bag], default_typestore=store)
        reader.open()
    except Exception as exc:
        raise RecordingError(f"cannot open bag {bag}: {' '.join(str(exc).split())}") from exc
    try:
        conns = [c for c in reader.connections if topics is None or c.topic in topics]
        for conn, t, raw in reader.messages(connections=conns):
            yield RecordedMessage(conn.topic, conn.msgtype, int(t), bytes(raw),
                                  store.deserialize_cdr(raw, conn.msgtype) if decode else None)
    finally:
        reader.close()


def _read_open(path: Path, topics, store, decode: bool = True) -> Iterator[RecordedMessage]:
    """An MCAP file without summary: records in file order until the data ends (a truncated
    record at the end is what a crash leaves and ends the read)."""
    from mcap.exceptions import McapError
    from mcap.records import Channel, Message, Schema
    from mcap.stream_reader import StreamReader

    schemas, channels = {}, {}
    out = []
    with open(path, "rb") as f:
        try:
            for record in StreamReader(f, skip_magic=False, emit_chunks=False).records:
                if isinstance(record, Schema):
                    schemas[record.id] = record.name
                elif isinstance(record, Channel):
                    channels[record.id] = (record.topic, schemas.get(record.schema_id, ""))
                elif isinstance(record, Message) and record.channel_id in channels:
                    topic, msgtype = channels[record.channel_id]
                    if topics is None or topic in topics:
                        out.append(RecordedMessage(topic, msgtype, record.log_time, bytes(record.data),
                                                   store.deserialize_cdr(record.data, msgtype) if decode else None))
        except (McapError, EOFError, ValueError, OSError):
            pass                                # the end of what reached the disk
    out.sort(key=lambda m: m.log_time_ns)
    yield from out


def topic_types(path: str) -> dict:
    """topic -> message type over every bag of the recording (from the bags' connections or, for
    a split a crash left open, from its channel records)."""
    out = {}
    for bag in bag_paths(path):
        if bag.is_dir() and (bag / "metadata.yaml").exists():
            from rosbags.highlevel import AnyReader

            with AnyReader([bag], default_typestore=default_typestore()) as reader:
                out.update({c.topic: c.msgtype for c in reader.connections})
        else:
            for m in _read_bag(bag, None, default_typestore(), decode=False):
                out.setdefault(m.topic, m.msgtype)
    return out
