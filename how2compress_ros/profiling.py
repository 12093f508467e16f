"""Profiling How2Compress settings into the lookup table the link monitor reads (stream "det").

Every deployable configuration (``h2c/base<QP>``, ``uniform/qp<QP>``, ``edge_only``) runs the
real edge and server pipelines over a clip: How2CompressEdge (EA model, per-macroblock-QP
libx264) -> How2CompressServer (FFmpeg decoder, detector). Per configuration: F1 of the
detections against the raw-frame detections (the paper's protocol without ground truth), mean
payload bytes per frame (and the largest, an I-frame), and median milliseconds per frame of EA
model, encoder, decoder and detector. Edge-only runs the detector on the raw frame at the edge:
F1 1 by construction, no payload.
"""
from __future__ import annotations

import time
from typing import Callable, Iterable, List, Optional, Sequence

import numpy as np

from how2compress_ros.codec import DEFAULT_LEVEL_QPS
from how2compress_ros.detectors.base import Detector
from how2compress_ros.detectors.metrics import score_frames
from how2compress_ros.pipeline import EdgeSettings, How2CompressEdge, How2CompressServer
from offload_common.lookup_table import EDGE_ONLY, LookupTable, LutEntry


def profile_setting(config_id: str, frames: Sequence[np.ndarray], refs, detector: Detector, model=None,
                    settings: Optional[EdgeSettings] = None, confident: float = 0.0,
                    level_qps: Sequence[int] = DEFAULT_LEVEL_QPS) -> LutEntry:
    """One configuration over ``frames`` through the edge and server pipelines."""
    edge = How2CompressEdge(model, settings or EdgeSettings(), config_id, level_qps)
    server = How2CompressServer(detector)
    sizes, model_ms, enc_ms, dec_ms, det_ms, found = [], [], [], [], [], []
    seq = 0
    try:
        for rgb in frames:
            for p in edge.process(rgb):
                sizes.append(len(p.data))
                model_ms.append(p.model_ms)
                enc_ms.append(p.encode_ms)
                results, _ = server.handle("profile", seq, p.data, p.keyframe, p.crc32, width=p.width,
                                           height=p.height, config_id=config_id)
                seq += 1
                for r in results:
                    dec_ms.append(r.decode_ms)
                    det_ms.append(r.detect_ms)
                    found.append(r.boxes)
    finally:
        edge.close()
    if len(found) != len(refs):
        # frames still inside the encoder / decoder (B-frames) are not scored
        refs = refs[:len(found)]
    f1 = score_frames(found, refs, confident=confident)
    # uniform/qp<QP> is a How2Compress-node setting too (no EA model): the same edge node runs it
    return LutEntry(config_id, "how2compress", round(f1.f1, 4), float(np.mean(sizes)),
                    float(np.mean(model_ms)), float(np.median(enc_ms)), float(np.median(dec_ms)),
                    float(np.median(det_ms)),
                    extra={"ap50": round(f1.ap50, 4), "max_bytes": float(max(sizes)), "frames": float(len(found))})


def profile_edge_only(frames: Sequence[np.ndarray], detector: Detector) -> LutEntry:
    times = []
    for rgb in frames:
        t = time.perf_counter()
        detector.detect(rgb)
        times.append(1000 * (time.perf_counter() - t))
    return LutEntry(EDGE_ONLY, "edge_only", 1.0, 0.0, float(np.median(times)), extra={"frames": float(len(frames))})


def profile_settings(config_ids: Iterable[str], frames: Sequence[np.ndarray], detector: Detector, model=None,
                     settings: Optional[EdgeSettings] = None, confident: float = 0.0,
                     on_entry: Optional[Callable[[LutEntry], None]] = None,
                     level_qps: Sequence[int] = DEFAULT_LEVEL_QPS) -> LookupTable:
    refs = [detector.detect(f) for f in frames]
    entries: List[LutEntry] = []
    for cid in config_ids:
        e = profile_edge_only(frames, detector) if cid == EDGE_ONLY else profile_setting(
            cid, frames, refs, detector, model, settings, confident, level_qps)
        entries.append(e)
        if on_entry:
            on_entry(e)
    h, w = frames[0].shape[:2]
    return LookupTable("det", "person detection", "f1", entries,
                       meta={"frames": len(frames), "size": f"{w}x{h}", "detector": type(detector).__name__,
                             "confident": confident, "bytes": "mean payload bytes per frame"})
