"""H.264 decoding with FFmpeg's decoder (PyAV), resilient to lost or corrupt access units.

After an access unit is lost (sequence gap) or fails to decode, the decoder drops everything
until the next keyframe instead of showing corrupt pictures, and says so (``waiting_for_keyframe``)
so the caller can ask the edge for one. The per-macroblock QP the decoder saw can be exported
(``export_qp=True``) to verify QP maps.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import List, Optional

import numpy as np


class H264DecodeError(RuntimeError):
    """An access unit that could not be decoded."""


@dataclass
class DecodedFrame:
    rgb: np.ndarray                    # (H, W, 3) uint8, cropped to the picture size
    keyframe: bool
    qp_map: Optional[np.ndarray] = None  # (rows, cols) QP per macroblock when export_qp


class H264Decoder:
    """``max_pixels``: FFmpeg refuses (as a decode error) any picture larger than this before
    allocating it, a second guard behind the SPS check of ``sps.declared_sizes``."""

    def __init__(self, export_qp: bool = False, threads: int = 1, max_pixels: int = 0):
        self.export_qp = export_qp
        self.threads = threads
        self.max_pixels = int(max_pixels)
        self.waiting_for_keyframe = True   # a stream can only start at a keyframe
        self.errors = 0
        self.dropped = 0
        self._ctx = None
        self._reset()

    def _reset(self) -> None:
        import av

        ctx = av.CodecContext.create("h264", "r")
        # Surface errors instead of concealing them: a concealed picture would be detected on.
        options = {"err_detect": "explode"}
        if self.max_pixels > 0:
            options["max_pixels"] = str(self.max_pixels)
        if self.export_qp:
            options["export_side_data"] = "venc_params"
        ctx.options = options
        ctx.thread_count = self.threads
        self._ctx = ctx

    def mark_lost(self) -> None:
        """An access unit was lost before reaching us: drop until the next keyframe."""
        if not self.waiting_for_keyframe:
            self.waiting_for_keyframe = True
            self._reset()

    def decode(self, data: bytes, keyframe: bool, crc32: Optional[int] = None) -> List[DecodedFrame]:
        """Decode one Annex-B access unit. Raises H264DecodeError for a corrupt one (and then
        waits for a keyframe); returns [] while waiting for a keyframe.

        H.264 has no checksum: most bit errors decode into wrong pictures without any error.
        Pass the sender's CRC-32 (``EncodedFrame.crc32``) so they are caught."""
        import av

        if crc32 is not None and zlib.crc32(data) != crc32:
            self._fail()
            raise H264DecodeError(f"CRC-32 mismatch ({zlib.crc32(data):08x} != {crc32:08x})")
        if self.waiting_for_keyframe:
            if not keyframe:
                self.dropped += 1
                return []
            self.waiting_for_keyframe = False
        if self._ctx is None:
            self._reset()
        try:
            frames = self._ctx.decode(av.Packet(data))
        except (av.error.FFmpegError, ValueError) as exc:
            self._fail()
            raise H264DecodeError(f"corrupt access unit: {exc}") from exc
        return self._convert(frames)

    def flush(self) -> List[DecodedFrame]:
        """Return the pictures the decoder still holds (B-frame reordering) at end of stream."""
        import av

        if self._ctx is None:
            return []
        try:
            return self._convert(self._ctx.decode(None))
        except av.error.FFmpegError:
            return []

    def close(self) -> None:
        """Free the decoder's context (its reference pictures); decoding again starts a new one,
        from a keyframe."""
        self._ctx = None
        self.waiting_for_keyframe = True

    def _fail(self) -> None:
        self.errors += 1
        self.waiting_for_keyframe = True
        self._reset()

    def _convert(self, frames) -> List[DecodedFrame]:
        out = []
        for frame in frames:
            qp = None
            if self.export_qp:
                side = frame.side_data.get("VIDEO_ENC_PARAMS") if hasattr(frame.side_data, "get") else None
                if side is not None:
                    qp = np.asarray(side.qp_map())
            out.append(DecodedFrame(frame.to_ndarray(format="rgb24"), bool(frame.key_frame), qp))
        return out
