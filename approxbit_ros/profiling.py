"""Profiling every ApproxBit configuration and the baselines into a lookup table (the input of
the link monitor and of the Table-1 benchmark): top-1 / top-5 on the test split through the
deployed path (edge -> wire fields -> server), exact payload bytes, and median per-clip times of
each stage at batch 1 on this machine."""
from __future__ import annotations

import platform
import time
from collections import defaultdict
from typing import Callable, Dict, List, Sequence

import numpy as np
import torch

from approxbit_ros.backbones import blank_input
from approxbit_ros.baselines import decode_clip_h264, encode_clip_h264
from approxbit_ros.configurations import EDGE_ONLY, ConfigurationSet
from approxbit_ros.data.synthetic_actions import SyntheticActions
from approxbit_ros.pipeline import ApproxBitEdge, ApproxBitServer, clip_tensor
from offload_common.lookup_table import LookupTable, LutEntry

H264_QPS = (24, 36)


class _Stats:
    def __init__(self):
        self.top1 = self.top5 = self.n = 0
        self.bytes: List[int] = []
        self.ms: Dict[str, List[float]] = defaultdict(list)

    def add(self, topk_ids: Sequence[int], label: int, nbytes: int, timed: bool, **ms: float) -> None:
        self.n += 1
        self.top1 += int(topk_ids[0] == label)
        self.top5 += int(label in list(topk_ids)[:5])
        self.bytes.append(nbytes)
        if timed:
            for k, v in ms.items():
                self.ms[k].append(v)

    def entry(self, config_id: str, method: str, deployable: bool = True) -> LutEntry:
        med = {k: float(np.median(v)) for k, v in self.ms.items()}
        extra = {"top5": self.top5 / self.n, "clips": self.n}
        if self.bytes and max(self.bytes) != min(self.bytes):       # range-coded or H.264: sizes vary by clip
            extra.update(bytes_p95=float(np.percentile(self.bytes, 95)), bytes_max=int(max(self.bytes)))
        return LutEntry(config_id, method, self.top1 / self.n, float(np.mean(self.bytes)), med.get("edge", 0.0),
                        med.get("encode", 0.0), med.get("decode", 0.0), med.get("server", 0.0), deployable, extra)


def profile_configurations(configs: ConfigurationSet, clips: int = 1300, timing_clips: int = 40,
                           h264_qps: Sequence[int] = H264_QPS, progress: bool = True,
                           on_entry: Callable[[LutEntry], None] = None, dataset=None,
                           task: str = "action recognition (synthetic actions test split)") -> LookupTable:
    """Every configuration of ``configs``, edge-only, server-only and H.264 at ``h264_qps``.
    Clips 0..clips-1 of the test split; the first ``timing_clips`` after two warm-up clips are
    timed (batch 1, the way the nodes run). Bytes are what the edge sends: range-coded where a
    configuration has an entropy model and that is smaller (mean, p95 and max in ``extra``, with
    the packed size). ``dataset`` (``ds[i]`` -> (clip, label)) replaces the synthetic test split,
    e.g. ``FootageTestClips``, whose labels are the uncompressed backbone's own top-1 on unlabelled
    footage (accuracy is then agreement with it)."""
    from tqdm import tqdm

    ds = dataset if dataset is not None else SyntheticActions("test", clips)
    clips = min(clips, len(ds))
    edge, server = ApproxBitEdge(configs, EDGE_ONLY), ApproxBitServer(configs)
    bb = configs.backbone
    entries: List[LutEntry] = []

    def done(e: LutEntry) -> None:
        entries.append(e)
        if on_entry:
            on_entry(e)

    def timed(i: int) -> bool:
        return 2 <= i < 2 + timing_clips

    seq = 0                    # one stream, numbered on: the server refuses repeats and implausible jumps
    for cid in list(configs.configurations) + [EDGE_ONLY]:
        edge.set_config(cid)
        st = _Stats()
        for i in tqdm(range(clips), desc=cid, disable=not progress, leave=False):
            frames, label = ds[i]
            out = edge.process(frames)
            if cid == EDGE_ONLY:
                st.add(out.prediction.topk_ids, label, 0, timed(i), edge=out.preprocess_ms + out.model_ms)
                continue
            res = server.handle("profile", seq, **out.wire_fields(configs.name))
            seq += 1
            st.add(res.prediction.topk_ids, label, len(out.payload.data), timed(i),
                   edge=out.preprocess_ms + out.model_ms, encode=out.encode_ms, decode=res.decode_ms,
                   server=res.server_ms)
        entry = st.entry(cid, "edge_only" if cid == EDGE_ONLY else configs.configurations[cid].kind)
        if cid != EDGE_ONLY and configs.configurations[cid].entropy_model is not None:
            entry.extra["packed_bytes"] = server.wire_shapes[cid].data_bytes
        done(entry)
    edge_only = entries[-1]
    raw_bytes = clips and int(np.prod(ds[0][0].shape))
    done(LutEntry("server_only/raw", "baseline", edge_only.accuracy, float(raw_bytes), 0.0, 0.0, 0.0,
                  edge_only.edge_ms, False, dict(edge_only.extra)))
    for qp in h264_qps:
        st = _Stats()
        for i in tqdm(range(clips), desc=f"h264/qp{qp}", disable=not progress, leave=False):
            frames, label = ds[i]
            enc = encode_clip_h264(frames, qp)
            decoded, dec_ms = decode_clip_h264(enc.packets)
            t = time.perf_counter()
            with torch.no_grad():
                top = bb(clip_tensor(decoded, bb)).topk(5, dim=1).indices[0].tolist()
            st.add(top, label, enc.bytes, timed(i), encode=enc.encode_ms, decode=dec_ms,
                   server=1000 * (time.perf_counter() - t))
        done(st.entry(f"h264/qp{qp}", "baseline", deployable=False))
    meta = {"backbone": configs.name, "clip_frames": int(ds[0][0].shape[0]), "clip_size": int(ds[0][0].shape[1]),
            "float32_map_bytes": {str(o): 4 * bb.feature_channels(o) * _feature_positions(configs, o)
                                  for o in sorted({c.offload_point for c in configs.configurations.values()})},
            "device": f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
                      f"{torch.get_num_threads()} threads, {configs.device}",
            "labels": configs.labels}
    return LookupTable("var", task, "top1", entries, meta)


class FootageTestClips:
    """The held-out clips of recorded footage as ``(clip, label)`` pairs for the profiler: the
    recording's label when the footage is labelled, else the uncompressed backbone's top-1 on that
    clip (so a configuration's "accuracy" is its agreement with the backbone)."""

    def __init__(self, footage, backbone, split: str = "test", batch_size: int = 32):
        from approxbit_ros.training.clip_data import teacher_logits

        self.footage, self.split = footage, split
        self.agreement = not footage.labelled
        if self.agreement:
            self.labels = teacher_logits(footage, backbone, split, batch_size).argmax(1).astype(np.int64)
        else:
            self.labels = np.array([footage.labels[w.recording] for w in footage.windows[split]], np.int64)

    def __len__(self) -> int:
        return len(self.footage.windows[self.split])

    def __getitem__(self, i: int):
        return self.footage.clip(self.footage.windows[self.split][i]), int(self.labels[i])


def _feature_positions(configs: ConfigurationSet, o: int) -> int:
    x = blank_input(configs.backbone, configs.clip_frames, configs.clip_size, configs.device)
    with torch.no_grad():
        return int(np.prod(configs.backbone.edge(x, o).shape[2:]))
