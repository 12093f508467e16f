"""Wire format of ApproxBit codes. The code tensor (K, T, H, W) of 0/1 values is either packed
MSB-first (``numpy.packbits``), ceil(n/8) bytes, padding bits zero, or — when the configuration
has an entropy model (``codec/entropy.py``) and that is smaller — range-coded
(``ENCODING_RANGE_CODED``). Either way a CRC-32 covers the data bytes (seeded with the entropy
model's fingerprint for coded data). The fields map 1:1 onto ``edge_offload/BinaryFeatures``;
decoding reproduces the bits exactly and rejects anything inconsistent."""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Sequence, Tuple

import numpy as np

ENCODING_BITS, ENCODING_FLOAT16, ENCODING_FLOAT32, ENCODING_RANGE_CODED = 0, 1, 2, 3
BIT_ORDER_MSB_FIRST = 0
MAX_ELEMENTS = 1 << 28          # refuse absurd shapes before allocating


class PayloadError(ValueError):
    """A payload whose fields do not describe its data."""


def pack_bits(bits: np.ndarray) -> bytes:
    """0/1 (or bool) array of any shape -> MSB-first packed bytes (row-major order)."""
    b = np.asarray(bits)
    if b.size and (b.min() < 0 or b.max() > 1):
        raise PayloadError("bits must be 0 or 1")
    return np.packbits(b.astype(np.uint8).reshape(-1), bitorder="big").tobytes()


def unpack_bits(data: bytes, shape: Sequence[int]) -> np.ndarray:
    """Packed bytes -> uint8 0/1 array of ``shape``; the byte count must be exact and the
    padding bits zero."""
    n = _elements(shape)
    if len(data) != (n + 7) // 8:
        raise PayloadError(f"{len(data)} bytes for {n} bits (expected {(n + 7) // 8})")
    bits = np.unpackbits(np.frombuffer(data, np.uint8), bitorder="big")
    if bits[n:].any():
        raise PayloadError("non-zero padding bits")
    return bits[:n].reshape(tuple(shape))


def _elements(shape: Sequence[int]) -> int:
    if len(shape) == 0 or any(int(s) <= 0 for s in shape):
        raise PayloadError(f"invalid shape {list(shape)}")
    n = int(np.prod([int(s) for s in shape], dtype=np.int64))
    if n > MAX_ELEMENTS:
        raise PayloadError(f"shape {list(shape)} has {n} elements (limit {MAX_ELEMENTS})")
    return n


@dataclass
class BinaryPayload:
    """The codec-specific fields of a BinaryFeatures message."""
    shape: Tuple[int, ...]
    data: bytes
    encoding: int = ENCODING_BITS
    bit_order: int = BIT_ORDER_MSB_FIRST
    crc32: int = 0

    @classmethod
    def from_bits(cls, bits: np.ndarray, entropy_model=None) -> "BinaryPayload":
        """Packed bits; range-coded under ``entropy_model`` (a ``BitContextModel``) instead when
        that is fewer bytes for these bits (never more than packing, clip by clip)."""
        data = pack_bits(bits)
        shape = tuple(int(s) for s in bits.shape)
        if entropy_model is not None:
            coded = entropy_model.encode(bits)
            if len(coded) < len(data):
                return cls(shape, coded, ENCODING_RANGE_CODED, BIT_ORDER_MSB_FIRST,
                           zlib.crc32(coded, entropy_model.fingerprint))
        return cls(shape, data, ENCODING_BITS, BIT_ORDER_MSB_FIRST, zlib.crc32(data))

    @classmethod
    def from_floats(cls, x: np.ndarray, half: bool = True) -> "BinaryPayload":
        """Raw float features (DNN-Surgery / DeepCOD baselines), little-endian."""
        dtype, enc = ("<f2", ENCODING_FLOAT16) if half else ("<f4", ENCODING_FLOAT32)
        data = np.ascontiguousarray(x, dtype=dtype).tobytes()
        return cls(tuple(int(s) for s in x.shape), data, enc, BIT_ORDER_MSB_FIRST, zlib.crc32(data))

    def decode(self, entropy_model=None) -> np.ndarray:
        """The tensor: uint8 bits for ENCODING_BITS and ENCODING_RANGE_CODED (which needs the
        configuration's ``entropy_model``), float32 otherwise. Raises PayloadError."""
        if self.encoding == ENCODING_RANGE_CODED:
            if entropy_model is None:
                raise PayloadError("range-coded payload for a configuration without an entropy model")
            if tuple(self.shape) != entropy_model.shape:
                raise PayloadError(f"shape {list(self.shape)}, the entropy model codes {list(entropy_model.shape)}")
            if zlib.crc32(self.data, entropy_model.fingerprint) != self.crc32:
                raise PayloadError("CRC-32 mismatch (corrupt data, or coded under another entropy model)")
            return entropy_model.decode(self.data)
        if zlib.crc32(self.data) != self.crc32:
            raise PayloadError("CRC-32 mismatch")
        if self.encoding == ENCODING_BITS:
            if self.bit_order != BIT_ORDER_MSB_FIRST:
                raise PayloadError(f"unknown bit order {self.bit_order}")
            return unpack_bits(self.data, self.shape)
        if self.encoding in (ENCODING_FLOAT16, ENCODING_FLOAT32):
            dtype = "<f2" if self.encoding == ENCODING_FLOAT16 else "<f4"
            n = _elements(self.shape)
            if len(self.data) != n * np.dtype(dtype).itemsize:
                raise PayloadError(f"{len(self.data)} bytes for {n} {dtype} values")
            return np.frombuffer(self.data, dtype).astype(np.float32).reshape(self.shape)
        raise PayloadError(f"unknown encoding {self.encoding}")
