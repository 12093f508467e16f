"""Fitting the entropy models of a configuration set (``codec/entropy.py``): every binary
configuration's codes on training clips, the model and its smoothing chosen on validation clips,
coded sizes reported on test clips (coded with the real coder, not the ideal length). Clips come
from any iterator of (B, T, H, W, 3) uint8 batches, so the synthetic splits and recorded footage
go through the same code."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional

import numpy as np
import torch

from approxbit_ros.codec.entropy import ENTROPY_SUFFIX, BitContextModel, fit_entropy_model


@torch.no_grad()
def collect_codes(configs, batches: Iterable[np.ndarray], progress: Optional[str] = None,
                  total: Optional[int] = None) -> Dict[str, np.ndarray]:
    """The binary codes (N, K, T, H, W) uint8 of every binary configuration of ``configs`` for the
    clips of ``batches``; the backbone runs once per offload point and batch."""
    from tqdm import tqdm

    binary = {cid: c for cid, c in configs.configurations.items() if c.kind == "binary"}
    out: Dict[str, List[np.ndarray]] = {cid: [] for cid in binary}
    for frames in tqdm(batches, desc=progress, disable=progress is None, unit="batch", leave=False, total=total):
        x = configs.backbone.preprocess(torch.from_numpy(np.ascontiguousarray(frames)).to(configs.device))
        feats: Dict[int, torch.Tensor] = {}
        for cid, c in binary.items():
            if c.offload_point not in feats:
                feats[c.offload_point] = configs.backbone.edge(x, c.offload_point)
            out[cid].append(c.encoder.encode(feats[c.offload_point]).cpu().numpy().astype(np.uint8))
    return {cid: np.concatenate(v) for cid, v in out.items() if v}


@dataclass
class CodedSizes:
    """Real coded sizes of one configuration's test codes, and the coder's times."""
    config_id: str
    model: str                 # e.g. "context/T-shared a=2"
    table_bytes: int
    packed_bytes: int
    coded_mean: float          # what is sent: coded, or packed when that is smaller (per clip)
    coded_p95: float
    coded_max: int
    ideal_mean: float          # -log2 P / 8 under the model
    fell_back: float           # fraction of clips sent packed
    encode_us: float           # median per payload
    decode_us: float

    @property
    def ratio(self) -> float:
        return self.coded_mean / self.packed_bytes


def describe(model: BitContextModel) -> str:
    if model.kind == "static":
        return "static"
    return f"context{'/T-shared' if model.share_time else ''} a={model.smoothing:g}"


def measure(config_id: str, model: BitContextModel, codes: np.ndarray, timed: int = 200) -> CodedSizes:
    """Code every (K, T, H, W) tensor of ``codes``; check the round trip is bit-exact (raises
    AssertionError otherwise); time the first ``timed`` payloads."""
    sent, enc_t, dec_t, fell = [], [], [], 0
    for i, bits in enumerate(codes):
        t0 = time.perf_counter()
        data = model.encode(bits)
        t1 = time.perf_counter()
        if len(data) >= model.packed_bytes:       # the edge sends this clip packed
            fell += 1
            sent.append(model.packed_bytes)
            continue
        back = model.decode(data)
        t2 = time.perf_counter()
        if not np.array_equal(back, bits):
            raise AssertionError(f"{config_id}: clip {i} does not survive the round trip")
        sent.append(len(data))
        if i < timed:
            enc_t.append(t1 - t0)
            dec_t.append(t2 - t1)
    s = np.array(sent, float)
    return CodedSizes(config_id, describe(model), int(model.table.nbytes), model.packed_bytes, float(s.mean()),
                      float(np.percentile(s, 95)), int(s.max()), float(model.code_length_bits(codes).mean() / 8),
                      fell / len(codes), 1e6 * float(np.median(enc_t or [0])), 1e6 * float(np.median(dec_t or [0])))


def save_entropy_model(model: BitContextModel, configs_folder: str, local_id: str, metadata: dict) -> str:
    """Write the model beside the configuration (``o1_enc_k4.entropy.safetensors``)."""
    path = os.path.join(configs_folder, local_id.replace("/", "_") + ENTROPY_SUFFIX)
    model.save(path, metadata)
    return path


__all__ = ["CodedSizes", "collect_codes", "describe", "fit_entropy_model", "measure", "save_entropy_model"]
