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

from how2compress_ros.codec import (DEFAULT_LEVEL_QPS, DecodedFrame, H264Decoder, H264DecodeError,
                                    H264EncoderConfig, MacroblockQPEncoder, levels_to_qp_map, mb_grid)
from how2compress_ros.codec.sps import SpsError, declared_sizes
from how2compress_ros.detectors.base import Box, Detector
from offload_common.lookup_table import EDGE_ONLY
from offload_common.payload_checks import SUPPORTED_FORMAT_VERSION, PayloadCounters, SequenceTracker, StreamLimits

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
class DecodeOutcome:
    """What one access unit gave (``How2CompressServer.admit``)."""
    frames: List[DecodedFrame]      # pictures decoded from it (none while waiting for a keyframe)
    decoded: bool                   # it reached the decoder and decoded; False: dropped waiting for a keyframe
    needs_keyframe: bool            # the stream waits for a keyframe: ask the edge for one
    decode_ms: float


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
    """Validates, decodes and runs the detector on How2Compress payloads, per stream.

    Before a unit reaches the decoder: its fields, its size, the picture size its SPS declares
    (which must be the message's ``width`` x ``height``, at most ``max_frame_pixels``), and the
    sequence number and capture stamp against the stream's history (``limits``; at most
    ``limits.max_streams`` decoders, idle ones freed). ``admit`` decodes (every unit: P-frames
    need their references); ``detect`` runs the detector on one picture, so a node can run it on
    the newest picture only when it falls behind."""

    MAX_DIM = 8192

    def __init__(self, detector: Detector, max_payload_bytes: int = 8_000_000, limits: Optional[StreamLimits] = None,
                 max_frame_pixels: int = 1920 * 1080):
        self.detector = detector
        self.max_payload_bytes = max_payload_bytes
        self.max_frame_pixels = int(max_frame_pixels)
        self.streams: Dict[str, StreamState] = {}
        self.sequences = SequenceTracker(limits)
        self.counters = ServerCounters()

    def _reject(self, reason: str, detail: str):
        raise self.counters.reject(reason, detail)

    def _check_fields(self, data: bytes, codec: str, format_version: int, width: int, height: int,
                      config_id: str) -> None:
        if format_version != SUPPORTED_FORMAT_VERSION:
            self._reject("version", f"unsupported format_version {format_version}")
        if codec != "h264":
            self._reject("codec", f"unsupported codec {codec[:40]!r}")
        if len(data) == 0 or len(data) > self.max_payload_bytes:
            self._reject("size", f"{len(data)} bytes (limit {self.max_payload_bytes})")
        if not (16 <= width <= self.MAX_DIM and 16 <= height <= self.MAX_DIM):
            self._reject("dimensions", f"{width}x{height}")
        if width * height > self.max_frame_pixels:
            self._reject("dimensions", f"{width}x{height} is over max_frame_pixels {self.max_frame_pixels}")
        if config_id and config_id != EDGE_ONLY:
            try:
                parse_config_id(config_id)
            except ConfigIdError as exc:
                self._reject("config", str(exc)[:200])
        try:
            declared = declared_sizes(data)
        except SpsError as exc:
            self._reject("sps", f"unreadable SPS: {exc}")
        for sps in declared:
            if (sps.width, sps.height) != (width, height):
                self._reject("sps", f"SPS declares {sps.width}x{sps.height} pictures, the message {width}x{height}")

    def admit(self, stream_id: str, seq: int, data: bytes, keyframe: bool, crc32: int, *, codec: str = "h264",
              format_version: int = SUPPORTED_FORMAT_VERSION, width: int = 0, height: int = 0, config_id: str = "",
              stamp_ns: int = 0, now_ns: Optional[int] = None) -> DecodeOutcome:
        """Check one access unit and decode it. Raises PayloadRejected for units that must not
        reach the decoder, H264DecodeError for corrupt ones. ``stamp_ns`` (the capture stamp)
        tells a restarted edge, whose numbering starts again, from a repeated payload: its stream
        starts over with a fresh decoder, which waits for the restarted edge's keyframe;
        ``now_ns`` (the server's clock) refuses implausible stamps."""
        self.counters.received += 1
        for gone in self.sequences.expire():
            self.streams.pop(gone).decoder.close()
            self.counters.expired += 1
        self._check_fields(data, codec, format_version, width, height, config_id)
        refusal = self.sequences.check(stream_id, seq, stamp_ns, now_ns)
        if refusal:
            self._reject(*refusal)
        st = self.streams.get(stream_id)
        restarted = self.sequences.restarts(stream_id, seq, stamp_ns)
        if st is None or restarted:
            self.counters.restarts += restarted
            if st is not None:
                st.decoder.close()
            st = self.streams[stream_id] = StreamState(H264Decoder(max_pixels=self.max_frame_pixels))
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
            return DecodeOutcome([], False, True, decode_ms)
        for f in frames:
            if f.rgb.shape[:2] != (height, width):      # the SPS check makes this unreachable; kept as a guard
                st.decoder.mark_lost()
                self._reject("dimensions", f"decoded {f.rgb.shape[1]}x{f.rgb.shape[0]}, message {width}x{height}")
        self.counters.decoded += len(frames)
        return DecodeOutcome(frames, True, st.decoder.waiting_for_keyframe, decode_ms)

    def detect(self, frame: DecodedFrame, decode_ms: float = 0.0) -> ServerResult:
        """The detector on one decoded picture."""
        t = time.perf_counter()
        boxes = self.detector.detect(frame.rgb)
        return ServerResult(frame.rgb, boxes, decode_ms, 1000 * (time.perf_counter() - t))

    def handle(self, stream_id: str, seq: int, data: bytes, keyframe: bool, crc32: int,
               **kwargs) -> Tuple[List[ServerResult], bool]:
        """``admit`` and ``detect`` every picture: returns (results, needs_keyframe)."""
        out = self.admit(stream_id, seq, data, keyframe, crc32, **kwargs)
        return [self.detect(f, out.decode_ms) for f in out.frames], out.needs_keyframe
