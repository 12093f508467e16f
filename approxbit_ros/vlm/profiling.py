"""The lookup table of a split vision-language model, for the link monitor: per configuration,
the payload bytes per clip, the edge, encoder, decoder and server times (the server's include
generating the answer), and the accuracy as agreement with the uncompressed model's greedy
answer on held-out (clip, question) pairs (there is no ground truth), with its 95 % Wilson
interval. Every clip goes through the same library edge and server the nodes run (wire
included). No ROS.
"""
from __future__ import annotations

import math
import platform
import time
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch

from approxbit_ros.configurations import EDGE_ONLY, ConfigurationSet
from offload_common.lookup_table import VQA_METRIC, LookupTable, LutEntry


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple:
    """95 % Wilson score interval of a proportion."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@torch.no_grad()
def profile_vlm_configurations(configs: ConfigurationSet, samples: Sequence, max_new_tokens: int = 32,
                               timing_pairs: int = 20,
                               on_entry: Optional[Callable[[LutEntry], None]] = None,
                               progress: bool = True) -> LookupTable:
    """``samples``: ``VlmSample`` (frames at the set's clip size and length, question); their
    ``answer_ids`` are filled with the edge-only answers (the teacher) when empty. Times are the
    medians over the first ``timing_pairs`` pairs."""
    from approxbit_ros.pipeline import ApproxBitEdge, ApproxBitServer

    if not samples:
        raise ValueError("no (clip, question) pairs to profile on")
    server = ApproxBitServer(configs)
    entries: List[LutEntry] = []
    teacher: Dict[int, List[int]] = {}
    for cid in [EDGE_ONLY] + [c for c in configs.ids if c != EDGE_ONLY]:     # the teacher first
        edge = ApproxBitEdge(configs, cid)
        same, sizes, tokens = 0, [], []
        times = {"edge": [], "enc": [], "dec": [], "server": []}
        pairs = samples
        if progress:
            from tqdm import tqdm

            pairs = tqdm(samples, desc=cid, unit="pair", leave=False)
        for i, s in enumerate(pairs):
            out = edge.process(s.frames)
            if cid == EDGE_ONLY:
                final, dec_ms, server_ms = out.final_map, 0.0, 0.0
            else:
                res = server.handle(cid, i, **out.wire_fields(configs.name))
                final, dec_ms, server_ms = res.final_map, res.decode_ms, res.server_ms
                sizes.append(len(out.payload.data))
            t_answer = time.perf_counter()
            answer = configs.backbone.split.answer(final, s.question, max_new_tokens)
            answer_ms = 1000 * (time.perf_counter() - t_answer)
            if cid == EDGE_ONLY:
                teacher[i] = list(s.answer_ids) or answer.token_ids
            same += answer.token_ids == teacher[i]
            tokens.append(len(answer.token_ids))
            if i < timing_pairs:
                edge_ms = out.preprocess_ms + out.model_ms + (answer_ms if cid == EDGE_ONLY else 0.0)
                times["edge"].append(edge_ms)
                times["enc"].append(out.encode_ms)
                times["dec"].append(dec_ms)
                times["server"].append(server_ms + answer_ms if cid != EDGE_ONLY else 0.0)
        lo, hi = wilson_interval(same, len(samples))
        med = {k: float(np.median(v)) for k, v in times.items()}
        e = LutEntry(cid, EDGE_ONLY if cid == EDGE_ONLY else ("baseline" if cid.endswith("float16") else "approxbit"),
                     same / len(samples), float(np.mean(sizes)) if sizes else 0.0, med["edge"], med["enc"],
                     med["dec"], med["server"],
                     extra={"agreement_lo": lo, "agreement_hi": hi, "pairs": float(len(samples)),
                            "answer_tokens": float(np.mean(tokens))})
        entries.append(e)
        if on_entry:
            on_entry(e)
    entries.sort(key=lambda e: e.config_id == EDGE_ONLY)     # the set's order, edge_only last
    meta = {"device": f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
                      f"{torch.get_num_threads()} threads",
            "clip_frames": configs.clip_frames, "clip_size": configs.clip_size,
            "split_layer": configs.backbone.split.split_layer, "max_new_tokens": max_new_tokens,
            "timing_pairs": min(timing_pairs, len(samples)), "date": time.strftime("%Y-%m-%d")}
    return LookupTable("var", f"video question answering ({configs.name}, agreement with the uncompressed "
                              f"model's greedy answer on {len(samples)} held-out pairs)", VQA_METRIC, entries, meta)


__all__ = ["profile_vlm_configurations", "wilson_interval"]
