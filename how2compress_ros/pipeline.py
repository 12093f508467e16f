"""How2Compress edge and server logic, without ROS: the nodes only convert messages.

Configuration ids (carried in every payload, chosen by the link monitor):
- ``h2c/base<QP>``: emphasis map from the EA model, level table (default 45/43/37/34/30, the
  edge's ``level_qps``) shifted so that level 0 uses <QP> (``h2c/base45`` is the paper's table);
- ``uniform/qp<QP>``: one QP for every macroblock, no EA model;
- ``edge_only``: nothing is sent (the edge runs the detector itself).
"""
from __future__ import annotations

import re
import time
import zlib
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from how2compress_ros.codec import (DEFAULT_LEVEL_QPS, H264Decoder, H264DecodeError, H264EncoderConfig,
                                    MacroblockQPEncoder, levels_to_qp_map, mb_grid)
from how2compress_ros.detectors.base import Box, Detector
from offload_common.lookup_table import EDGE_ONLY
from offload_common.payload_checks import SUPPORTED_FORMAT_VERSION, PayloadCounters, SequenceTracker

_CONFIG_RE = re.compile(r"^(h2c/base|uniform/qp)(\d{1,2})$")


class ConfigIdError(ValueError):
    """A configuration id this pipeline does not know."""


@dataclass(frozen=True)
class H2CConfig:
    config_id: str
    level_qps: Tuple[int, ...]      # QP per emphasis level; one entry for uniform
    uses_emphasis: bool


def check_level_table(table: Sequence[int]) -> Tuple[int, ...]:
    """A level -> QP table: QPs in [0, 51], never rising with the level (more emphasis, more quality)."""
    t = tuple(int(q) for q in table)
    if len(t) < 2 or any(not 0 <= q <= 51 for q in t) or any(b > a for a, b in zip(t, t[1:])):
        raise ConfigIdError(f"level table {list(t)} must have >= 2 QPs in [0, 51], non-increasing with the level")
    return t


def parse_level_table(text: str) -> Tuple[int, ...]:
    """'45,43,37,34,30' (a command line's --level-qps) -> a checked level table."""
    try:
        qps = [int(q) for q in text.split(",")]
    except ValueError:
        raise ConfigIdError(f"level table {text!r}: expected comma-separated integer QPs") from None
    return check_level_table(qps)


def parse_config_id(config_id: str, base_table: Sequence[int] = DEFAULT_LEVEL_QPS) -> H2CConfig:
    if config_id == EDGE_ONLY:
        return H2CConfig(config_id, (), False)
    m = _CONFIG_RE.match(config_id)
    if not m:
        raise ConfigIdError(f"unknown How2Compress configuration {config_id!r} "
                            "(expected h2c/base<QP>, uniform/qp<QP> or edge_only)")
    qp = int(m.group(2))
    if not 0 <= qp <= 51:
        raise ConfigIdError(f"QP {qp} out of range [0, 51] in {config_id!r}")
    if m.group(1) == "uniform/qp":
        return H2CConfig(config_id, (qp,), False)
    shift = base_table[0] - qp
    return H2CConfig(config_id, tuple(max(q - shift, 0) for q in base_table), True)


@dataclass
class EncodedPayload:
    data: bytes
    keyframe: bool
    frame_index: int
    gop: int
    width: int
    height: int
    config: H2CConfig
    levels: Optional[np.ndarray]    # emphasis map used (None for uniform)
    map_age: int
    model_ms: float
    encode_ms: float

    @property
    def crc32(self) -> int:
        return zlib.crc32(self.data)


@dataclass
class EdgeSettings:
    gop: int = 30
    preset: str = "veryfast"
    bframes: int = 0
    threads: int = 1
    fps: float = 30.0
    map_reuse: int = 1              # compute the emphasis map every N frames


class How2CompressEdge:
    """RGB frame -> (EA model every ``map_reuse`` frames) -> QP map -> H.264 access unit."""

    def __init__(self, model=None, settings: Optional[EdgeSettings] = None, config_id: str = "h2c/base45",
                 level_qps: Sequence[int] = DEFAULT_LEVEL_QPS):
        self.model = model
        self.level_qps = check_level_table(level_qps)
        if model is not None and len(self.level_qps) != model.config.levels:
            raise ConfigIdError(f"level table has {len(self.level_qps)} QPs, the EA model {model.config.levels} levels")
        self.settings = settings or EdgeSettings()
        self._encoder: Optional[MacroblockQPEncoder] = None
        self._size: Optional[Tuple[int, int]] = None
        self._levels: Optional[np.ndarray] = None
        self._map_age = 0
        self._force_keyframe = False
        self.set_config(config_id)

    def set_config(self, config_id: str) -> H2CConfig:
        cfg = parse_config_id(config_id, self.level_qps)
        if cfg.uses_emphasis and self.model is None:
            raise ConfigIdError(f"{config_id} needs an EA model and none is loaded (set model_path, or choose "
                                f"uniform/qp<QP> or edge_only)")
        self.config = cfg
        return cfg

    def request_keyframe(self) -> None:
        self._force_keyframe = True

    def _encoder_for(self, width: int, height: int) -> MacroblockQPEncoder:
        if self._size != (width, height):
            if self._encoder is not None:
                self._encoder.close()
            s = self.settings
            self._encoder = MacroblockQPEncoder(H264EncoderConfig(
                width, height, fps=s.fps, gop=s.gop, preset=s.preset, bframes=s.bframes, threads=s.threads,
                base_qp=DEFAULT_LEVEL_QPS[0]))
            self._size = (width, height)
            self._levels = None
            self._force_keyframe = True
        return self._encoder

    def process(self, rgb: np.ndarray) -> List[EncodedPayload]:
        # One configuration per frame: a node's monitor callback may call set_config from another
        # thread while this frame is being processed; the switch applies from the next frame.
        cfg = self.config
        if cfg.config_id == EDGE_ONLY:
            return []
        h, w = rgb.shape[:2]
        rgb = rgb[: h - h % 2, : w - w % 2]             # 4:2:0 needs even sizes
        h, w = rgb.shape[:2]
        enc = self._encoder_for(w, h)
        model_ms = 0.0
        if cfg.uses_emphasis:
            if self._levels is None or self._map_age + 1 >= self.settings.map_reuse:
                t = time.perf_counter()
                self._levels = self.model.predict_levels(rgb)
                model_ms = 1000 * (time.perf_counter() - t)
                self._map_age = 0
            else:
                self._map_age += 1
            levels = self._levels
            qp = levels_to_qp_map(levels, cfg.level_qps)
        else:
            levels = None
            qp = np.full(mb_grid(w, h), cfg.level_qps[0], np.int32)
        # x264's base QP is fixed at encoder creation; QP map offsets are relative to it
        t = time.perf_counter()
        units = enc.encode(rgb, qp, force_keyframe=self._force_keyframe)
        encode_ms = 1000 * (time.perf_counter() - t)
        self._force_keyframe = False
        out = []
        for u in units:
            out.append(EncodedPayload(u.data, u.keyframe, u.pts, self.settings.gop, w, h, cfg,
                                      levels, self._map_age if levels is not None else 0, model_ms, encode_ms))
        return out

    def close(self) -> None:
        if self._encoder is not None:
            self._encoder.close()
            self._encoder = None


@dataclass
class ServerResult:
    rgb: np.ndarray
    boxes: List[Box]
    decode_ms: float
    detect_ms: float


@dataclass
class StreamState:
    decoder: H264Decoder
    received: int = 0
    lost: int = 0


@dataclass
class ServerCounters(PayloadCounters):
    decoded: int = 0
    corrupt: int = 0
    waiting_dropped: int = 0
    failed: int = 0             # counted by the node: payloads whose handling raised anything else


class How2CompressServer:
    """Validates, decodes and runs the detector on How2Compress payloads, per stream."""

    MAX_DIM = 8192

    def __init__(self, detector: Detector, max_payload_bytes: int = 8_000_000):
        self.detector = detector
        self.max_payload_bytes = max_payload_bytes
        self.streams: Dict[str, StreamState] = {}
        self.sequences = SequenceTracker()
        self.counters = ServerCounters()

    def _reject(self, reason: str, detail: str):
        raise self.counters.reject(reason, detail)

    def handle(self, stream_id: str, seq: int, data: bytes, keyframe: bool, crc32: int, *,
               codec: str = "h264", format_version: int = SUPPORTED_FORMAT_VERSION, width: int = 0, height: int = 0,
               config_id: str = "", stamp_ns: int = 0) -> Tuple[List[ServerResult], bool]:
        """Decode one access unit and detect. Returns (results, needs_keyframe). Raises
        PayloadRejected for payloads that must not reach the decoder. ``stamp_ns`` (the capture
        stamp) tells a restarted edge, whose numbering starts again, from a repeated payload: its
        stream starts over with a fresh decoder, which waits for the restarted edge's keyframe."""
        self.counters.received += 1
        if format_version != SUPPORTED_FORMAT_VERSION:
            self._reject("version", f"unsupported format_version {format_version}")
        if codec != "h264":
            self._reject("codec", f"unsupported codec {codec!r}")
        if len(data) == 0 or len(data) > self.max_payload_bytes:
            self._reject("size", f"{len(data)} bytes (limit {self.max_payload_bytes})")
        if not (16 <= width <= self.MAX_DIM and 16 <= height <= self.MAX_DIM):
            self._reject("dimensions", f"{width}x{height}")
        if config_id and config_id != EDGE_ONLY:
            try:
                parse_config_id(config_id)
            except ConfigIdError as exc:
                self._reject("config", str(exc))
        why = self.sequences.check(stream_id, seq, stamp_ns)
        if why:
            self._reject("sequence", why)
        st = self.streams.get(stream_id)
        restarted = self.sequences.restarts(stream_id, seq, stamp_ns)
        if st is None or restarted:
            self.counters.restarts += restarted
            st = self.streams[stream_id] = StreamState(H264Decoder())
        lost = self.sequences.accept(stream_id, seq, stamp_ns)
        if lost:
            st.lost += lost
            self.counters.lost += lost
            st.decoder.mark_lost()
        st.received += 1
        was_waiting = st.decoder.waiting_for_keyframe
        t = time.perf_counter()
        try:
            frames = st.decoder.decode(data, keyframe, crc32)
        except H264DecodeError:
            self.counters.corrupt += 1
            raise
        decode_ms = 1000 * (time.perf_counter() - t)
        if was_waiting and not keyframe:
            self.counters.waiting_dropped += 1
            return [], True
        out = []
        for f in frames:
            t = time.perf_counter()
            boxes = self.detector.detect(f.rgb)
            out.append(ServerResult(f.rgb, boxes, decode_ms, 1000 * (time.perf_counter() - t)))
            self.counters.decoded += 1
        return out, st.decoder.waiting_for_keyframe
