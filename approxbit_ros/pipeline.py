"""ApproxBit edge and server logic, without ROS: the nodes only convert messages.

Edge: camera frames -> ``ClipBuffer`` (centre crop, resize, clips of ``frames`` every ``stride``)
-> ``ApproxBitEdge`` (backbone up to the offload point + binary encoder of the active
configuration -> ``BinaryPayload``; or the whole backbone for edge_only).
Server: ``ApproxBitServer`` checks every field of a payload against the configuration its id
names, decodes the bits, runs the decoder and the rest of the backbone -> ``Prediction``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from approxbit_ros.codec.wire import (BIT_ORDER_MSB_FIRST, ENCODING_BITS, ENCODING_FLOAT16, ENCODING_FLOAT32,
                                      ENCODING_RANGE_CODED, BinaryPayload, PayloadError)
from approxbit_ros.configurations import EDGE_ONLY, Configuration, ConfigurationSet, WireShape, warm_up
from offload_common.payload_checks import (SUPPORTED_FORMAT_VERSION, PayloadCounters, PayloadRejected,
                                           SequenceTracker, StreamLimits, check_finite)
from offload_common.torch_device import stage_time


@dataclass
class Clip:
    frames: np.ndarray            # (T, S, S, 3) uint8
    first_stamp_ns: int
    last_stamp_ns: int
    index: int                    # clips emitted so far by this buffer


class ClipBuffer:
    """Frames of any size -> square model-size frames -> a clip of ``frames`` every ``stride``
    frames (stride = frames: back-to-back clips)."""

    def __init__(self, frames: int = 16, stride: int = 16, size: int = 64):
        if frames < 1 or stride < 1 or size < 8:
            raise ValueError(f"bad clip buffer: frames {frames}, stride {stride}, size {size}")
        self.frames, self.stride, self.size = frames, stride, size
        self._buf: List[Tuple[np.ndarray, int]] = []
        self._since_last = 0
        self.emitted = 0

    def prepare(self, rgb: np.ndarray) -> np.ndarray:
        """Centre crop to a square, then resize to size x size (area interpolation)."""
        import cv2

        h, w = rgb.shape[:2]
        s = min(h, w)
        y0, x0 = (h - s) // 2, (w - s) // 2
        sq = rgb[y0:y0 + s, x0:x0 + s]
        if s == self.size:
            return np.ascontiguousarray(sq)
        interp = cv2.INTER_AREA if s > self.size else cv2.INTER_LINEAR
        return cv2.resize(np.ascontiguousarray(sq), (self.size, self.size), interpolation=interp)

    def push(self, rgb: np.ndarray, stamp_ns: int) -> Optional[Clip]:
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"expected an RGB frame (H, W, 3), got {rgb.shape}")
        self._buf.append((self.prepare(rgb), stamp_ns))
        if len(self._buf) > self.frames:
            self._buf.pop(0)
        self._since_last += 1
        if len(self._buf) < self.frames or (self.emitted and self._since_last < self.stride):
            return None
        self._since_last = 0
        clip = Clip(np.stack([f for f, _ in self._buf]), self._buf[0][1], self._buf[-1][1], self.emitted)
        self.emitted += 1
        return clip

    def reset(self) -> None:
        self._buf.clear()
        self._since_last = 0


@dataclass
class Prediction:
    class_id: int
    label: str
    score: float
    topk_ids: List[int] = field(default_factory=list)
    topk_labels: List[str] = field(default_factory=list)
    topk_scores: List[float] = field(default_factory=list)


def predict_topk(logits: torch.Tensor, labels: Sequence[str], k: int = 5) -> Prediction:
    """(1, C) or (C,) logits -> top-k softmax prediction."""
    p = torch.softmax(logits.reshape(-1).float(), 0)
    s, i = p.topk(min(k, p.numel()))
    ids = [int(v) for v in i]
    return Prediction(ids[0], labels[ids[0]], float(s[0]), ids, [labels[j] for j in ids], [float(v) for v in s])


def clip_tensor(frames: np.ndarray, backbone) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (1, 3, T, H, W) model input on the backbone's device."""
    device = next(backbone.parameters()).device
    return backbone.preprocess(torch.from_numpy(np.ascontiguousarray(frames))[None].to(device))


@dataclass
class EdgeOutput:
    config_id: str
    payload: Optional[BinaryPayload]          # None for edge_only
    configuration: Optional[Configuration]
    feature_shape: Tuple[int, int, int]
    prediction: Optional[Prediction]          # edge_only result
    preprocess_ms: float
    model_ms: float
    encode_ms: float
    final_map: Optional[torch.Tensor] = None  # edge_only: the backbone's last feature map (1, C, T, H, W)

    def wire_fields(self, backbone: str) -> dict:
        """The payload's self-describing fields (BinaryFeatures), as ``ApproxBitServer.handle``
        takes them."""
        c, p = self.configuration, self.payload
        return dict(config_id=self.config_id, backbone=backbone, offload_index=c.offload_point,
                    spatial_encoder=c.spatial_encoder, codebook_size=c.codebook_size, encoding=p.encoding,
                    bit_order=p.bit_order, shape=list(p.shape), feature_shape=list(self.feature_shape),
                    crc32=p.crc32, data=p.data)


class TorchEdgeRuntime:
    """The edge half on PyTorch, on the device the configurations are on (the default runtime).
    ``OnnxEdgeRuntime`` (``onnx_edge.py``) has the same methods."""

    def __init__(self, configs: ConfigurationSet):
        self.configs = configs

    def clock(self) -> float:
        """The stage clock (waits for queued GPU work)."""
        return stage_time(self.configs.device)

    def prepare(self, frames: np.ndarray) -> torch.Tensor:
        return clip_tensor(frames, self.configs.backbone)

    def features(self, x: torch.Tensor, offload_point: int) -> torch.Tensor:
        return self.configs.backbone.edge(x, offload_point)

    def transmitted(self, c: Configuration, feats: torch.Tensor) -> np.ndarray:
        """What configuration ``c`` sends for one clip: its codes (bits or float codes), or the
        features themselves when it has no encoder (float32)."""
        return (feats if c.encoder is None else c.encoder.encode(feats))[0].cpu().numpy()

    def final_map(self, x: torch.Tensor) -> torch.Tensor:
        """The whole backbone up to its last feature map (1, C, T, H, W), which the classifier
        (pooled) and the VQA head read (edge_only)."""
        bb = self.configs.backbone
        return bb.finish(bb.edge(x, 0), 0)


class ApproxBitEdge:
    """Clips -> the active configuration's payload (or the edge_only prediction). ``runtime``:
    what runs the edge half, ``TorchEdgeRuntime`` by default, or an ``OnnxEdgeRuntime`` of the
    same configurations (same payloads; pre-processing is then part of the model time).
    ``entropy_coding``: range-code the bits of configurations that have an entropy model, when
    that is smaller than packing (clip by clip)."""

    def __init__(self, configs: ConfigurationSet, config_id: str, topk: int = 5, runtime=None,
                 entropy_coding: bool = True):
        self.configs, self.topk, self.entropy_coding = configs, topk, entropy_coding
        self.runtime = runtime or TorchEdgeRuntime(configs)
        self.set_config(config_id)

    def set_config(self, config_id: str) -> None:
        """Switch configuration (all are preloaded: a lookup). Raises ConfigIdError."""
        self.configs.check(config_id)
        self.config_id = config_id

    @torch.no_grad()
    def process(self, frames: np.ndarray) -> EdgeOutput:
        cid, rt = self.config_id, self.runtime
        t0 = time.perf_counter()
        x = rt.prepare(frames)
        t1 = rt.clock()
        if cid == EDGE_ONLY:
            final = rt.final_map(x).to(self.configs.device)
            pred = predict_topk(self.configs.backbone.classify_map(final), self.configs.labels, self.topk) \
                if self.configs.labels else None
            t2 = rt.clock()
            return EdgeOutput(cid, None, None, (0, 0, 0), pred, _ms(t0, t1), _ms(t1, t2), 0.0, final)
        c = self.configs.get(cid)
        feats = rt.features(x, c.offload_point)
        t2 = rt.clock()
        codes = rt.transmitted(c, feats)
        if c.float_codes:
            payload = BinaryPayload.from_floats(codes, half=c.kind == "float16")
        else:
            payload = BinaryPayload.from_bits(codes, c.entropy_model if self.entropy_coding else None)
        t3 = time.perf_counter()
        return EdgeOutput(cid, payload, c, tuple(int(s) for s in feats.shape[2:]), None, _ms(t0, t1), _ms(t1, t2),
                          _ms(t2, t3))


@dataclass
class ServerResult:
    prediction: Optional[Prediction]          # None: the set has no classifier (a vision-language model)
    decode_ms: float
    server_ms: float
    final_map: Optional[torch.Tensor] = None  # the backbone's last feature map (1, C, T, H, W), for the VQA head
                                              # (a vision-language model: the language model's video features)


@dataclass
class AdmittedPayload:
    """A payload that passed every check (``ApproxBitServer.admit``): its codes, unpacked, ready
    for the decoder and the rest of the backbone (``ApproxBitServer.serve``)."""
    stream_id: str
    seq: int
    configuration: Configuration
    codes: torch.Tensor                       # (1, K, T', H', W') on the models' device
    feature_shape: Tuple[int, int, int]
    check_ms: float


class ApproxBitServer:
    """Validates and decodes payloads of any configuration of the set, per stream.

    A payload is checked against the configuration its id names before any model runs: every
    field, the exact code and feature shape and byte count that configuration sends for clips of
    ``configs.clip_frames`` x ``configs.clip_size``² (probed once at construction, which is also
    the warm-up), sequence number and capture stamp (``limits``), CRC, and finite values for
    float payloads. ``admit`` does all of that (cheap); ``serve`` runs the models."""

    def __init__(self, configs: ConfigurationSet, max_payload_bytes: int = 8_000_000, topk: int = 5,
                 limits: Optional[StreamLimits] = None, runtime=None):
        """``runtime``: None (torch) or an ``OnnxServerRuntime`` (``onnx_server.py``) built from
        the same configurations."""
        self.configs, self.max_payload_bytes, self.topk = configs, max_payload_bytes, topk
        self.counters = PayloadCounters()
        self.sequences = SequenceTracker(limits)
        self.wire_shapes: Dict[str, WireShape] = warm_up(configs)
        self.runtime = runtime

    def _expect(self, ok: bool, reason: str, detail: str) -> None:
        if not ok:
            raise self.counters.reject(reason, detail)

    def check(self, *, format_version: int, config_id: str, backbone: str, offload_index: int,
              spatial_encoder: bool, codebook_size: int, encoding: int, shape: Sequence[int],
              feature_shape: Sequence[int], data_len: int) -> Configuration:
        """The configuration a payload's fields describe, or PayloadRejected."""
        self._expect(format_version == SUPPORTED_FORMAT_VERSION, "version", f"format_version {format_version}")
        self._expect(0 < data_len <= self.max_payload_bytes, "size",
                     f"{data_len} bytes (limit {self.max_payload_bytes})")
        self._expect(config_id in self.configs.configurations, "config",
                     f"unknown configuration {config_id[:80]!r}")
        c = self.configs.configurations[config_id]
        self._expect(backbone == self.configs.name, "backbone",
                     f"{backbone[:80]!r}, server runs {self.configs.name!r}")
        got = (int(offload_index), bool(spatial_encoder), int(codebook_size))
        want = (c.offload_point, c.spatial_encoder, c.codebook_size)
        self._expect(got == want, "fields", f"(offload, spatial encoder, K) {got} but {config_id} has {want}")
        want_enc = {"float16": {ENCODING_FLOAT16}, "binary": {ENCODING_BITS, ENCODING_RANGE_CODED}
                    if c.entropy_model is not None else {ENCODING_BITS}}.get(c.kind, {ENCODING_FLOAT32})
        self._expect(encoding in want_enc, "encoding", f"encoding {encoding}, {config_id} sends {sorted(want_enc)}")
        wire = self.wire_shapes[config_id]
        shape, fs = tuple(int(s) for s in shape[:8]), tuple(int(s) for s in feature_shape[:8])
        self._expect(shape == wire.code_shape and fs == wire.feature_shape, "shape",
                     f"code shape {list(shape)}, feature shape {list(fs)}; {config_id} sends "
                     f"{list(wire.code_shape)} and {list(wire.feature_shape)} for {self.configs.clip_frames}-frame "
                     f"{self.configs.clip_size}x{self.configs.clip_size} clips")
        if encoding == ENCODING_RANGE_CODED:     # shorter than packed, whole 32-bit words
            self._expect(data_len < wire.data_bytes and data_len % 4 == 0, "size",
                         f"{data_len} range-coded bytes for a {list(shape)} code (packed: {wire.data_bytes})")
        else:
            self._expect(data_len == wire.data_bytes, "size",
                         f"{data_len} bytes for a {list(shape)} code (expected {wire.data_bytes})")
        return c

    @torch.no_grad()
    def admit(self, stream_id: str, seq: int, *, crc32: int, data: bytes, bit_order: int = 0,
              format_version: int = SUPPORTED_FORMAT_VERSION, stamp_ns: int = 0, now_ns: Optional[int] = None,
              **fields) -> AdmittedPayload:
        """Check one payload (``fields``: the keyword arguments of ``check``; ``stamp_ns``: its
        capture stamp, which tells a restarted sender from a repeated payload; ``now_ns``: the
        server's clock, to refuse implausible stamps) and unpack its codes. Raises
        PayloadRejected; a rejected payload does not advance the stream's sequence."""
        t0 = time.perf_counter()
        self.counters.received += 1
        self.counters.expired += len(self.sequences.expire())
        c = self.check(data_len=len(data), format_version=format_version, **fields)
        self._expect(bit_order == BIT_ORDER_MSB_FIRST, "fields", f"bit_order {bit_order} (only MSB-first is defined)")
        refusal = self.sequences.check(stream_id, seq, stamp_ns, now_ns)
        if refusal:
            raise self.counters.reject(*refusal)
        payload = BinaryPayload(tuple(int(s) for s in fields["shape"]), data, fields["encoding"], bit_order, crc32)
        try:
            values = payload.decode(c.entropy_model)
        except PayloadError as exc:
            raise self.counters.reject("payload", str(exc)) from None
        if c.kind != "binary":
            refusal = check_finite(values, f"{c.config_id} payload")
            if refusal:
                raise self.counters.reject(*refusal)
        codes = torch.from_numpy(np.ascontiguousarray(values))[None].to(self.configs.device)
        self.counters.restarts += self.sequences.restarts(stream_id, seq, stamp_ns)
        self.counters.lost += self.sequences.accept(stream_id, seq, stamp_ns)
        return AdmittedPayload(stream_id, seq, c, codes, self.wire_shapes[c.config_id].feature_shape,
                               _ms(t0, time.perf_counter()))

    @torch.no_grad()
    def serve(self, p: AdmittedPayload) -> ServerResult:
        """Decoder and the rest of the backbone on an admitted payload."""
        c = p.configuration
        t0 = time.perf_counter()
        if self.runtime is not None:
            feats = self.runtime.decode(c, p.codes)
            t1 = time.perf_counter()
            final, logits = self.runtime.finish(c, feats)
        else:
            feats = p.codes.float() if c.decoder is None else c.decoder(p.codes.float(), p.feature_shape)
            t1 = stage_time(self.configs.device)
            final = self.configs.backbone.finish(feats, c.offload_point)
            logits = self.configs.backbone.classify_map(final) if self.configs.labels else None
        pred = predict_topk(logits, self.configs.labels, self.topk) if logits is not None else None
        t2 = time.perf_counter()
        self.counters.accepted += 1
        return ServerResult(pred, p.check_ms + _ms(t0, t1), _ms(t1, t2), final)

    def handle(self, stream_id: str, seq: int, **kwargs) -> ServerResult:
        """``admit`` then ``serve``: one payload to its prediction."""
        return self.serve(self.admit(stream_id, seq, **kwargs))


def _ms(a: float, b: float) -> float:
    return 1000.0 * (b - a)


__all__ = ["AdmittedPayload", "ApproxBitEdge", "ApproxBitServer", "Clip", "ClipBuffer", "EdgeOutput", "PayloadRejected",
           "Prediction", "ServerResult", "predict_topk"]
