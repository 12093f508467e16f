"""The picture size an H.264 access unit declares, read from its sequence parameter sets (SPS)
without decoding anything (ITU-T H.264 §7.3.2.1.1), so a server can refuse a unit whose pictures
would be larger than its message says, or larger than it is willing to decode, before the
decoder allocates them.

Written by hand: no maintained Python package parses an SPS without decoding (PyAV exposes the
size only on decoded frames), and the part needed is ~60 lines of Exp-Golomb reading. Every
field is bounded; anything malformed raises ``SpsError``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import List

NAL_SPS = 7
_HIGH_PROFILES = {100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135}
_START_CODE = re.compile(b"\x00\x00\x01")
MAX_SPS_BYTES = 4096            # a real SPS is tens of bytes


class SpsError(ValueError):
    """An SPS that cannot be read."""


@dataclass(frozen=True)
class SpsInfo:
    profile_idc: int
    width: int                  # picture size after the frame cropping the SPS declares
    height: int
    coded_width: int            # macroblock-aligned size the decoder allocates
    coded_height: int


class _Bits:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def u(self, n: int) -> int:
        v = 0
        for _ in range(n):
            byte = self.pos >> 3
            if byte >= len(self.data):
                raise SpsError("SPS ends early")
            v = (v << 1) | ((self.data[byte] >> (7 - (self.pos & 7))) & 1)
            self.pos += 1
        return v

    def ue(self, limit: int = 1 << 16) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise SpsError("Exp-Golomb code longer than 32 bits")
        v = (1 << zeros) - 1 + self.u(zeros)
        if v > limit:
            raise SpsError(f"SPS field {v} over its limit {limit}")
        return v

    def se(self) -> int:
        k = self.ue(1 << 32)
        return (k + 1) // 2 if k & 1 else -(k // 2)


def nal_units(data: bytes) -> List[bytes]:
    """The NAL units of an Annex-B byte stream (start codes removed)."""
    starts = [m.end() for m in _START_CODE.finditer(data)]
    out = []
    for i, s in enumerate(starts):
        e = starts[i + 1] - 3 if i + 1 < len(starts) else len(data)
        out.append(data[s:e].rstrip(b"\x00"))
    return [n for n in out if n]


def _rbsp(nal: bytes) -> bytes:
    """Payload of a NAL unit with its emulation-prevention bytes (00 00 03) removed."""
    return nal[1:].replace(b"\x00\x00\x03", b"\x00\x00")


def _skip_scaling_list(b: _Bits, size: int) -> None:
    last = nxt = 8
    for _ in range(size):
        if nxt != 0:
            nxt = (last + b.se() + 256) % 256
        last = nxt if nxt != 0 else last


def parse_sps(nal: bytes) -> SpsInfo:
    """One SPS NAL unit (header byte included) -> its picture size. Raises SpsError."""
    if len(nal) > MAX_SPS_BYTES:
        raise SpsError(f"SPS of {len(nal)} bytes")
    if not nal or nal[0] & 0x1F != NAL_SPS:
        raise SpsError("not an SPS NAL unit")
    b = _Bits(_rbsp(nal))
    profile = b.u(8)
    b.u(16)                                     # constraint flags, level_idc
    b.ue(31)                                    # seq_parameter_set_id
    chroma_format_idc, separate_planes = 1, 0
    if profile in _HIGH_PROFILES:
        chroma_format_idc = b.ue(3)
        if chroma_format_idc == 3:
            separate_planes = b.u(1)
        b.ue(6)
        b.ue(6)                                 # bit depths
        b.u(1)                                  # qpprime_y_zero_transform_bypass_flag
        if b.u(1):                              # seq_scaling_matrix_present_flag
            for i in range(8 if chroma_format_idc != 3 else 12):
                if b.u(1):
                    _skip_scaling_list(b, 16 if i < 6 else 64)
    b.ue(12)                                    # log2_max_frame_num_minus4
    poc_type = b.ue(2)
    if poc_type == 0:
        b.ue(12)
    elif poc_type == 1:
        b.u(1)
        b.se()
        b.se()
        for _ in range(b.ue(255)):
            b.se()
    b.ue(32)                                    # max_num_ref_frames
    b.u(1)                                      # gaps_in_frame_num_value_allowed_flag
    mb_cols = b.ue(1 << 12) + 1
    map_rows = b.ue(1 << 12) + 1
    frame_mbs_only = b.u(1)
    if not frame_mbs_only:
        b.u(1)                                  # mb_adaptive_frame_field_flag
    b.u(1)                                      # direct_8x8_inference_flag
    coded_w, coded_h = 16 * mb_cols, 16 * map_rows * (2 - frame_mbs_only)
    crop = [0, 0, 0, 0]
    if b.u(1):                                  # frame_cropping_flag
        crop = [b.ue(1 << 16) for _ in range(4)]
    chroma_type = 0 if separate_planes else chroma_format_idc
    unit_x = 1 if chroma_type in (0, 3) else 2
    unit_y = (2 - frame_mbs_only) * (2 if chroma_type == 1 else 1)
    w = coded_w - unit_x * (crop[0] + crop[1])
    h = coded_h - unit_y * (crop[2] + crop[3])
    if w <= 0 or h <= 0:
        raise SpsError(f"cropping leaves a {w}x{h} picture of {coded_w}x{coded_h}")
    return SpsInfo(profile, w, h, coded_w, coded_h)


def declared_sizes(data: bytes) -> List[SpsInfo]:
    """Every SPS in an access unit (none in most non-key units). Raises SpsError."""
    return [parse_sps(n) for n in nal_units(data) if n[0] & 0x1F == NAL_SPS]
