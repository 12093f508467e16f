"""H.264 encoding with one QP per 16x16 macroblock on stock libx264.

The QP map reaches x264 as ``x264_picture_t.prop.quant_offsets`` (one float per macroblock,
added to the frame QP). Rate control is set so x264 honours the map exactly (measured, see
shared notes "x264-per-mb-qp"): ``crf=<base QP>``, ``qcomp=1``, ``ipratio=pbratio=1``,
``aq-mode=1`` with a negligible ``aq-strength`` (aq-mode 0 would ignore the offsets),
``mbtree=0``. x264 keeps the previous QP for +-1 steps between neighbouring macroblocks, so
emphasis levels should map to QPs at least 2 apart (the default 45/43/37/34/30 are).
"""
from __future__ import annotations

import ctypes
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np

from how2compress_ros.codec.x264_ctypes import (PARAM_I_CSP, PARAM_I_HEIGHT, PARAM_I_LOG_LEVEL,
                                                PARAM_I_THREADS, PARAM_I_WIDTH, PARAM_SIZE,
                                                X264_CSP_I420, X264_LOG_ERROR, X264_TYPE_AUTO,
                                                X264_TYPE_IDR, X264Error, X264Nal, X264Picture,
                                                load_x264)

#: QP of emphasis levels 0..4 (How2Compress default, base QP 45).
DEFAULT_LEVEL_QPS = (45, 43, 37, 34, 30)
MB = 16
NAL_IDR_SLICE = 5


def mb_grid(width: int, height: int) -> Tuple[int, int]:
    """(rows, cols) of the 16x16 macroblock grid covering a width x height picture."""
    return (height + MB - 1) // MB, (width + MB - 1) // MB


def levels_to_qp_map(levels: np.ndarray, level_qps: Sequence[int] = DEFAULT_LEVEL_QPS) -> np.ndarray:
    """Emphasis levels (0..len(level_qps)-1) per macroblock -> QP per macroblock."""
    levels = np.asarray(levels)
    if levels.size and (levels.min() < 0 or levels.max() >= len(level_qps)):
        raise ValueError(f"emphasis levels must be in [0, {len(level_qps) - 1}], got "
                         f"[{levels.min()}, {levels.max()}]")
    return np.asarray(level_qps, np.int32)[levels.astype(np.int64)]


@dataclass
class H264EncoderConfig:
    width: int
    height: int
    fps: float = 30.0
    gop: int = 30                 # frames between IDR pictures (keyint); 1 = all intra
    preset: str = "veryfast"
    tune: str = "zerolatency"     # no frame delay (sliced threads off here), mbtree off
    bframes: int = 0
    threads: int = 1
    base_qp: int = DEFAULT_LEVEL_QPS[0]
    qp_min: int = 0
    qp_max: int = 51
    extra: dict = field(default_factory=dict)   # further x264_param_parse options

    def validate(self) -> None:
        if self.width < 16 or self.height < 16 or self.width % 2 or self.height % 2:
            raise ValueError(f"H.264 4:2:0 needs even dimensions >= 16, got {self.width}x{self.height}")
        if not 0 <= self.base_qp <= 51:
            raise ValueError(f"base_qp must be in [0, 51], got {self.base_qp}")
        if self.gop < 1:
            raise ValueError(f"gop must be >= 1, got {self.gop}")


@dataclass
class AccessUnit:
    """One encoded picture: Annex-B bytes (SPS/PPS repeated before every IDR)."""
    data: bytes
    keyframe: bool
    pts: int
    dts: int


class MacroblockQPEncoder:
    """libx264 encoder taking an RGB frame and a per-macroblock QP map.

    >>> enc = MacroblockQPEncoder(H264EncoderConfig(640, 360))
    >>> units = enc.encode(rgb, qp_map)          # qp_map: (rows, cols) ints, or None = base QP
    """

    def __init__(self, config: H264EncoderConfig, library_path: str = ""):
        config.validate()
        self.config = config
        self.x264 = load_x264(library_path)
        self.rows, self.cols = mb_grid(config.width, config.height)
        self._param = ctypes.create_string_buffer(PARAM_SIZE)
        lib = self.x264.lib
        if lib.x264_param_default_preset(self._param, config.preset.encode(), config.tune.encode() or None) < 0:
            raise X264Error(f"unknown x264 preset/tune {config.preset!r}/{config.tune!r}")
        self._set_int(PARAM_I_WIDTH, config.width)
        self._set_int(PARAM_I_HEIGHT, config.height)
        self._set_int(PARAM_I_CSP, X264_CSP_I420)
        self._set_int(PARAM_I_THREADS, config.threads)
        self._set_int(PARAM_I_LOG_LEVEL, X264_LOG_ERROR)
        fps_num, fps_den = _fraction(config.fps)
        options = {
            "fps": f"{fps_num}/{fps_den}",
            "keyint": str(config.gop), "min-keyint": "1", "scenecut": "0",
            "bframes": str(config.bframes),
            "repeat-headers": "1", "annexb": "1",
            # rate control that honours quant_offsets exactly (see module docstring)
            "crf": str(config.base_qp), "qcomp": "1", "ipratio": "1", "pbratio": "1",
            "aq-mode": "1", "aq-strength": "0.0001", "mbtree": "0",
            "qpmin": str(config.qp_min), "qpmax": str(config.qp_max),
        }
        options.update({k: str(v) for k, v in config.extra.items()})
        for name, value in options.items():
            if lib.x264_param_parse(self._param, name.encode(), value.encode()) != 0:
                raise X264Error(f"x264 refused option {name}={value}")
        if lib.x264_param_apply_profile(self._param, b"high") < 0:
            raise X264Error("x264 refused profile high")
        self._enc = self.x264.encoder_open(self._param)
        if not self._enc:
            raise X264Error(f"x264_encoder_open failed for {config}")
        self._pts = 0
        self._offsets = np.zeros(self.rows * self.cols, np.float32)

    def _set_int(self, offset: int, value: int) -> None:
        ctypes.c_int.from_buffer(self._param, offset).value = int(value)

    @property
    def grid(self) -> Tuple[int, int]:
        return self.rows, self.cols

    def encode(self, rgb: np.ndarray, qp_map: Optional[np.ndarray] = None, *,
               force_keyframe: bool = False) -> List[AccessUnit]:
        """Encode one RGB frame; returns the access units x264 emits (none while it buffers
        B-frames, usually exactly one with the zerolatency tune)."""
        import cv2

        h, w = self.config.height, self.config.width
        if rgb.shape != (h, w, 3) or rgb.dtype != np.uint8:
            raise ValueError(f"expected ({h}, {w}, 3) uint8 RGB, got {rgb.shape} {rgb.dtype}")
        # I420 as one contiguous buffer: Y (h x w), then U and V (h/2 x w/2 each).
        yuv = np.ascontiguousarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)).reshape(-1)
        pic = X264Picture()
        self.x264.lib.x264_picture_init(ctypes.byref(pic))
        pic.img.i_csp, pic.img.i_plane = X264_CSP_I420, 3
        base = yuv.ctypes.data
        for i, (offset, stride) in enumerate(((0, w), (h * w, w // 2), (h * w + h * w // 4, w // 2))):
            pic.img.i_stride[i] = stride
            pic.img.plane[i] = ctypes.cast(base + offset, ctypes.POINTER(ctypes.c_uint8))
        if qp_map is not None:
            qp_map = np.asarray(qp_map)
            if qp_map.shape != (self.rows, self.cols):
                raise ValueError(f"QP map must be {self.rows}x{self.cols} macroblocks, got {qp_map.shape}")
            np.subtract(qp_map.reshape(-1), self.config.base_qp, out=self._offsets, casting="unsafe")
            pic.prop.quant_offsets = self._offsets.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        pic.i_type = X264_TYPE_IDR if force_keyframe else X264_TYPE_AUTO
        pic.i_pts = self._pts
        self._pts += 1
        return self._call_encode(ctypes.byref(pic))

    def flush(self) -> List[AccessUnit]:
        """Drain frames x264 still holds (B-frames / lookahead)."""
        out = []
        while self.x264.lib.x264_encoder_delayed_frames(self._enc) > 0:
            units = self._call_encode(None)
            if not units:
                break
            out += units
        return out

    def _call_encode(self, pic_in) -> List[AccessUnit]:
        nals = ctypes.POINTER(X264Nal)()
        n = ctypes.c_int(0)
        pic_out = X264Picture()
        size = self.x264.lib.x264_encoder_encode(self._enc, ctypes.byref(nals), ctypes.byref(n),
                                                 pic_in, ctypes.byref(pic_out))
        if size < 0:
            raise X264Error("x264_encoder_encode failed")
        if size == 0:
            return []
        # NAL payloads are contiguous in one buffer, starting at the first NAL's payload.
        data = ctypes.string_at(nals[0].p_payload, size)
        keyframe = any(nals[i].i_type == NAL_IDR_SLICE for i in range(n.value))
        return [AccessUnit(data, keyframe, int(pic_out.i_pts), int(pic_out.i_dts))]

    def close(self) -> None:
        if getattr(self, "_enc", None):
            self.x264.lib.x264_encoder_close(self._enc)
            self._enc = None

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _fraction(fps: float) -> Tuple[int, int]:
    from fractions import Fraction

    f = Fraction(fps).limit_denominator(1001)
    return f.numerator, f.denominator
