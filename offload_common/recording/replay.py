"""Replaying a recording (``offload_replay``): the recorded payloads go through a server library
again (the same models, or another detector / model version) and what comes out is compared
with the results the run published; and the link the monitor saw is written as a rate trace the
adaptive experiments replay on the bench (``--trace``).

Each method supplies a :class:`PayloadReplayer` for its payload type and registers it with
:func:`register_replayer` (``approxbit_ros/replay.py``, ``how2compress_ros/replay.py``); this
module never imports a method package.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from typing import Callable, Dict, Hashable, Iterable, List, Optional, Protocol, Tuple

from offload_common.recording.bag_reader import read_recording, topic_types
from offload_common.recording.records import load_records


class PayloadReplayer(Protocol):
    payload_type: str                    # e.g. "edge_offload/msg/BinaryFeatures"
    result_type: str                     # the results it is compared with, e.g. "edge_offload/msg/ActionResult"

    def replay(self, payload, recv_ns: int) -> Iterable[Tuple[Hashable, object]]:
        """The server library on one recorded payload: (key, comparable result) per result."""

    def recorded(self, result) -> Optional[Tuple[Hashable, object]]:
        """(key, comparable result) of a recorded result message; None for results it does not
        make (edge-only results, another stream's)."""

    def same(self, replayed, recorded) -> bool:
        ...


#: payload message type -> factory(options dict) of its replayer
REPLAYERS: Dict[str, Callable[[dict], PayloadReplayer]] = {}


def register_replayer(payload_type: str, factory: Callable[[dict], PayloadReplayer]) -> None:
    REPLAYERS[payload_type] = factory


@dataclass
class ReplayReport:
    payload_type: str
    payloads: int = 0
    replayed_results: int = 0
    recorded_results: int = 0
    compared: int = 0
    identical: int = 0
    only_recorded: int = 0              # recorded results with no replayed counterpart
    mismatches: List[dict] = field(default_factory=list)   # the first 20

    @property
    def all_identical(self) -> bool:
        return self.compared > 0 and self.identical == self.compared

    def as_dict(self) -> dict:
        return {**self.__dict__, "all_identical": self.all_identical}


def replay_recording(path: str, replayer: PayloadReplayer) -> ReplayReport:
    types = topic_types(path)
    payload_topics = [t for t, ty in types.items() if ty == replayer.payload_type]
    result_topics = [t for t, ty in types.items() if ty == replayer.result_type]
    rep = ReplayReport(replayer.payload_type)
    replayed: Dict[Hashable, object] = {}
    for m in read_recording(path, topics=payload_topics):
        rep.payloads += 1
        for key, value in replayer.replay(m.msg, m.log_time_ns):
            replayed[key] = value
    rep.replayed_results = len(replayed)
    for m in read_recording(path, topics=result_topics):
        got = replayer.recorded(m.msg)
        if got is None:
            continue
        key, value = got
        rep.recorded_results += 1
        if key not in replayed:
            rep.only_recorded += 1
            continue
        rep.compared += 1
        if replayer.same(replayed[key], value):
            rep.identical += 1
        elif len(rep.mismatches) < 20:
            rep.mismatches.append({"key": str(key), "replayed": str(replayed[key]), "recorded": str(value)})
    return rep


def payload_types(path: str) -> List[str]:
    """The payload types in a recording that a registered replayer takes."""
    return sorted({ty for ty in topic_types(path).values() if ty in REPLAYERS})


def write_link_trace(path: str, csv_path: str, t0_ns: Optional[int] = None) -> int:
    """The monitor's link estimate over the run as ``time_s,mbps,link_up`` rows (time from the
    first decision, or ``t0_ns``): the rate trace ``RateTrace.from_csv`` and the adaptive
    experiments' ``--trace`` load; rows with ``link_up`` 0 are outages (their rate is the last
    estimate, for the shaper). The monitor's start, before it first saw the link up, is left
    out. Returns the number of rows."""
    decisions = load_records(path)["decision"]
    first_up = next((i for i, d in enumerate(decisions) if d["link_up"]), None)
    if first_up is None:
        raise ValueError(f"{path} has no offload_config decision with the link up to take the link from")
    decisions = decisions[first_up:]
    t0 = decisions[0]["recv_ns"] if t0_ns is None else t0_ns
    rows, last_rate = [], None
    for d in decisions:
        rate = d["bandwidth_mbps"] if d["bandwidth_mbps"] > 0 else last_rate
        if rate is None:
            continue
        last_rate = rate
        row = (round((d["recv_ns"] - t0) / 1e9, 3), round(rate, 4), int(d["link_up"]))
        if rows and row[1:] == rows[-1][1:]:
            continue
        rows.append(row)
    with open(csv_path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["time_s", "mbps", "link_up"])
        w.writerows(rows)
    return len(rows)
