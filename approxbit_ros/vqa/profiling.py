"""The VQA lookup table: the link monitor's view of the ApproxBit stream when the user cares
about the answers rather than the action labels.

A configuration costs what it costs for action recognition (the same payload bytes, edge,
encoder, decoder and server times, measured by ``approxbit_profile``) plus the answer head's time
on the side that runs it (the server, or the edge in edge-only mode); its accuracy is the head's
answer accuracy through that configuration (every phrasing of every question type, from
``evaluate_configurations``). The table keeps the action stream's id, so the monitor's decisions
reach the same edge node; point the monitor at this table instead of the action table to hold an
accuracy SLA on answers.
"""
from __future__ import annotations

import platform
import time
from dataclasses import replace
from typing import Dict

import torch

from approxbit_ros.vqa.model import VqaHead
from approxbit_ros.vqa.questions import PHRASINGS
from offload_common.lookup_table import EDGE_ONLY, VQA_METRIC, LookupTable


@torch.no_grad()
def head_latency_ms(head: VqaHead, repeats: int = 50) -> float:
    """Median time of one answer at batch 1 (what ``VqaQuestion.publish`` adds per clip) on one
    torch thread, as ``approxbit_profile`` times the action table, every phrasing in turn."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        dev = next(head.parameters()).device
        fmap = torch.randn(1, head.config.feature_dim, *head.config.grid, device=dev)
        questions = [p for _, p in PHRASINGS]
        for q in questions[:3]:
            head.answer(fmap, q)
        times = []
        for i in range(repeats):
            t = time.perf_counter()
            head.answer(fmap, questions[i % len(questions)])
            times.append(1000 * (time.perf_counter() - t))
    finally:
        torch.set_num_threads(before)
    return float(sorted(times)[len(times) // 2])


def vqa_lookup_table(action_table: LookupTable, results: Dict[str, dict], head_ms: float,
                     clips: int) -> LookupTable:
    """The VQA table of the stream ``action_table`` profiles: one entry per deployable
    configuration with VQA results (``results[config_id]`` as ``evaluate_configurations`` gives
    them), accuracy = all questions, times + ``head_ms`` on the side that answers. Configurations
    of the action table without VQA results (e.g. the benchmark-only baselines) are left out."""
    entries = []
    for e in action_table.entries:
        acc = results.get(e.config_id)
        if acc is None or not e.deployable:
            continue
        extra = {"action_top1": float(acc.get("action_top1", e.accuracy)), "clips": float(clips),
                 **{f"vqa/{k}": float(v) for k, v in acc.items() if k not in ("all", "action_top1")}}
        timed = replace(e, edge_ms=e.edge_ms + head_ms) if e.config_id == EDGE_ONLY else \
            replace(e, server_ms=e.server_ms + head_ms)
        entries.append(replace(timed, accuracy=float(acc["all"]), extra=extra))
    missing = sorted(set(results) - {e.config_id for e in entries})
    if not entries:
        raise ValueError("no configuration of the action table has VQA results")
    meta = {k: v for k, v in action_table.meta.items() if k not in ("command", "seconds")}
    meta.update({"times_from": action_table.meta.get("command", "approxbit_profile"),
                 "head_ms": head_ms, "head_device": f"{platform.processor() or platform.machine()}, "
                 f"torch {torch.__version__}, 1 thread", "not_in_action_table": missing})
    return LookupTable(action_table.stream_id, "video question answering (synthetic actions test split)",
                       VQA_METRIC, entries, meta)


__all__ = ["head_latency_ms", "vqa_lookup_table"]
