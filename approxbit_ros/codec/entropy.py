"""Lossless entropy coding of ApproxBit's binary codes (beyond the paper, which stops at packing).

A ``BitContextModel`` gives every bit of a code tensor (K, T, H, W) a probability of being 1,
looked up in a table fitted on training clips; ``constriction``'s range coder turns those
probabilities into bytes. Two kinds, chosen per configuration on validation clips
(``fit_entropy_model``):

- ``static``: one Bernoulli probability per position (k, t, h, w);
- ``context``: one probability per position and *context*, the context being the four bits just
  before it along K, T, H and W (0 outside the tensor): 16 contexts. The table can be shared over
  T (``share_time``), which makes it T times smaller at a small cost.

The decoder needs a bit's context before it can decode the bit, so bits are coded in wavefronts of
constant k + t + h + w: every neighbour of a wavefront lies on the previous one. The encoder codes
all bits in one call (it knows them all); the decoder makes one vectorised call per wavefront
(K + T + H + W - 3 calls).

Wire form (``ENCODING_RANGE_CODED``): the coder's 32-bit words, little-endian. The payload CRC-32
is seeded with the model's fingerprint, so codes coded under another model version (an edge and a
server with different files) fail the CRC instead of decoding into wrong bits. Decoding refuses a
byte count that is not a whole number of words or not below the packed size, and a stream that
runs out before the shape's bits are decoded (truncated data; constriction's ``maybe_exhausted``).
Words after a complete code may go unnoticed: they decode nothing and cost only the sender.

Probabilities are stored as uint16 (P(1) in 1/65536, 1..65535) in a safetensors file beside the
configuration (``<id>.entropy.safetensors``), so edge and server compute bit-identical coder
inputs. Plain Python (numpy + constriction), no ROS, no torch.
"""
from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from approxbit_ros.codec.wire import PayloadError

ENTROPY_SUFFIX = ".entropy.safetensors"
KINDS = ("static", "context")
CONTEXT_BITS = 4                        # previous neighbour along K, T, H, W
SMOOTHING = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
P_SCALE = 1 << 16


@lru_cache(maxsize=64)
def _wavefronts(shape: Tuple[int, ...], ordered: bool) -> Tuple[np.ndarray, Tuple[int, ...]]:
    """Flat indices in coding order and the boundaries of the wavefronts (one front holding every
    bit when ``ordered`` is False: static models need no order)."""
    n = int(np.prod(shape))
    if not ordered:
        return np.arange(n), (0, n)
    level = np.indices(shape).sum(0).reshape(-1)
    order = np.argsort(level, kind="stable")
    bounds = np.searchsorted(level[order], np.arange(int(level.max()) + 2))
    return order, tuple(int(b) for b in bounds)


def contexts(bits: np.ndarray) -> np.ndarray:
    """(..., K, T, H, W) 0/1 -> same shape of context ids 0..15: bit j set when the previous
    element along axis j of (K, T, H, W) is 1."""
    b = np.asarray(bits, np.uint8)
    ctx = np.zeros(b.shape, np.uint8)
    for j in range(CONTEXT_BITS):
        axis = b.ndim - CONTEXT_BITS + j
        src = [slice(None)] * b.ndim
        dst = [slice(None)] * b.ndim
        src[axis], dst[axis] = slice(0, -1), slice(1, None)
        ctx[tuple(dst)] |= b[tuple(src)] << j
    return ctx


@dataclass
class BitContextModel:
    """P(bit = 1) for every element of a (K, T, H, W) code tensor, as a uint16 table of shape
    (contexts, K, T or 1, H, W)."""
    kind: str
    shape: Tuple[int, int, int, int]
    table: np.ndarray
    smoothing: float = 0.0
    stats: Dict[str, float] = field(default_factory=dict)

    def __post_init__(self):
        self.shape = tuple(int(s) for s in self.shape)
        if self.kind not in KINDS:
            raise ValueError(f"unknown entropy model kind {self.kind!r}; expected one of {', '.join(KINDS)}")
        if len(self.shape) != 4 or min(self.shape) < 1:
            raise ValueError(f"code shape must be (K, T, H, W), got {list(self.shape)}")
        k, t, h, w = self.shape
        ctx = 1 << CONTEXT_BITS if self.kind == "context" else 1
        if (self.table.dtype != np.uint16 or self.table.ndim != 5 or self.table.shape[0] != ctx
                or self.table.shape[1:] not in ((k, t, h, w), (k, 1, h, w))):
            raise ValueError(f"{self.kind} table of shape {list(self.table.shape)} {self.table.dtype} does not fit "
                             f"code shape {list(self.shape)}")
        if int(self.table.min()) < 1:
            raise ValueError("probabilities must lie in 1..65535 / 65536")
        p1 = self.table.astype(np.float64) / P_SCALE
        self._p1 = np.ascontiguousarray(np.broadcast_to(p1, (ctx, k, t, h, w)).reshape(ctx, -1))
        self._p1_by_position = np.ascontiguousarray(self._p1.T).reshape(-1)   # [position * contexts + context]
        self.fingerprint = zlib.crc32(self.table.tobytes(), zlib.crc32(json.dumps(
            [self.kind, list(self.shape), list(self.table.shape)]).encode()))

    @property
    def n(self) -> int:
        return int(np.prod(self.shape))

    @property
    def share_time(self) -> bool:
        return self.table.shape[2] == 1 and self.shape[1] > 1

    @property
    def packed_bytes(self) -> int:
        return (self.n + 7) // 8

    def probabilities(self, bits: np.ndarray) -> np.ndarray:
        """(N, K, T, H, W) bits -> P(1) of each (what the coder is given), float64."""
        b = np.asarray(bits).reshape(-1, *self.shape)
        if self.kind == "static":
            return np.broadcast_to(self._p1[0].reshape(self.shape), b.shape)
        ctx = contexts(b).reshape(len(b), -1).astype(np.intp)
        return self._p1[ctx, np.arange(self.n)[None]].reshape(b.shape)

    def code_length_bits(self, bits: np.ndarray) -> np.ndarray:
        """Ideal code length (-log2 P) of each of (N, K, T, H, W) bit tensors, in bits."""
        b = np.asarray(bits).reshape(-1, *self.shape).astype(bool)
        p = self.probabilities(b)
        return -np.where(b, np.log2(p), np.log2(1.0 - p)).reshape(len(b), -1).sum(1)

    def encode(self, bits: np.ndarray) -> bytes:
        """One (K, T, H, W) 0/1 tensor -> range-coded bytes (little-endian 32-bit words)."""
        import constriction

        b = np.asarray(bits)
        if tuple(b.shape) != self.shape:
            raise PayloadError(f"code shape {list(b.shape)}, the entropy model codes {list(self.shape)}")
        order, _ = _wavefronts(self.shape, self.kind == "context")
        flat = b.reshape(-1).astype(np.int32)[order]
        p1 = self.probabilities(b).reshape(-1)[order]
        enc = constriction.stream.queue.RangeEncoder()
        enc.encode(flat, constriction.stream.model.Bernoulli(perfect=False), p1)
        return enc.get_compressed().astype("<u4").tobytes()

    def decode(self, data: bytes) -> np.ndarray:
        """Range-coded bytes -> the (K, T, H, W) uint8 bits; PayloadError for data this model did not
        code (a partial word, no shorter than packing, truncated)."""
        import constriction

        if not data or len(data) % 4:
            raise PayloadError(f"{len(data)} coded bytes: not a whole number of 32-bit words")
        if len(data) >= self.packed_bytes:
            raise PayloadError(f"{len(data)} coded bytes for {self.n} bits: an edge sends those packed "
                               f"({self.packed_bytes} bytes)")
        fronts = _decoding_plan(self.shape, self.kind == "context")
        dec = constriction.stream.queue.RangeDecoder(np.frombuffer(data, "<u4").copy())
        # Bernoulli: its encoder is 2x slower than Categorical's here, its decoder 1.7x faster
        family = constriction.stream.model.Bernoulli(perfect=False)
        bits = np.zeros(self.n + 1, np.uint8)          # bits[n]: the 0 outside the tensor
        p1 = self._p1_by_position
        try:
            for idx, base, (nk, nt, nh, nw) in fronts:
                if nk is not None:
                    ctx = bits[nk] | (bits[nt] << 1) | (bits[nh] << 2) | (bits[nw] << 3)
                    bits[idx] = dec.decode(family, p1[base + ctx])
                else:
                    bits[idx] = dec.decode(family, p1[base])
            exhausted = dec.maybe_exhausted()
        except (ValueError, RuntimeError, AssertionError) as exc:   # constriction's errors on bad data
            raise PayloadError(f"range decoder: {exc}") from None
        if not exhausted:
            raise PayloadError(f"{len(data)} coded bytes are not exactly the code of {self.n} bits "
                               "(truncated, padded or coded under another model)")
        return bits[:self.n].astype(np.uint8).reshape(self.shape)

    def save(self, path: str, metadata: Optional[dict] = None) -> None:
        from safetensors.numpy import save_file

        meta = {"kind": self.kind, "shape": json.dumps(list(self.shape)), "smoothing": str(self.smoothing),
                "stats": json.dumps(self.stats), **{k: str(v) for k, v in (metadata or {}).items()}}
        save_file({"probabilities": np.ascontiguousarray(self.table)}, path, metadata=meta)

    @classmethod
    def load(cls, path: str) -> "BitContextModel":
        """ValueError (one line) for a file that is not a model this code wrote."""
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(path, "np") as f:
                meta = f.metadata() or {}
                table = f.get_tensor("probabilities")
            return cls(meta["kind"], tuple(json.loads(meta["shape"])), table, float(meta.get("smoothing", 0)),
                       json.loads(meta.get("stats", "{}")))
        except (SafetensorError, KeyError, TypeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path} is not an entropy model: {exc}") from None


@lru_cache(maxsize=64)
def _decoding_plan(shape: Tuple[int, ...], ordered: bool) -> list:
    """Per wavefront: its flat indices, where each bit's probabilities start in the
    position-major table (index * contexts) and, for context models, the flat index of each
    bit's previous neighbour along K, T, H, W (n, the index of a constant 0, outside the tensor)."""
    order, bounds = _wavefronts(shape, ordered)
    if not ordered:
        return [(order, order, (None,) * CONTEXT_BITS)]
    n = int(np.prod(shape))
    coords = np.indices(shape).reshape(len(shape), -1)
    strides = np.array([int(np.prod(shape[j + 1:])) for j in range(len(shape))])
    nb = np.where(coords > 0, np.arange(n)[None] - strides[:, None], n).astype(np.int32)
    plan = []
    for a, z in zip(bounds[:-1], bounds[1:]):
        idx = order[a:z].astype(np.int32)
        plan.append((idx, idx << CONTEXT_BITS, tuple(np.ascontiguousarray(nb[j, idx]) for j in range(CONTEXT_BITS))))
    return plan


def fit_table(bits: np.ndarray, kind: str, smoothing: float, share_time: bool = False) -> np.ndarray:
    """Counts of (N, K, T, H, W) training bits -> the uint16 table: per position (and context),
    (ones + a * p_position) / (seen + a), p_position itself from the Krichevsky-Trofimov estimate
    (ones + 1/2) / (N + 1) (pooled over T when ``share_time``)."""
    b = np.asarray(bits, np.uint8)
    n = len(b)
    axes = (0, 2) if share_time else (0,)
    ones = b.sum(axis=axes, dtype=np.float64, keepdims=True)[0]
    seen = n * (b.shape[2] if share_time else 1)
    p_pos = (ones + 0.5) / (seen + 1.0)
    if kind == "static":
        p = p_pos[None]
    else:
        ctx = contexts(b)
        p = np.empty((1 << CONTEXT_BITS,) + p_pos.shape)
        for c in range(1 << CONTEXT_BITS):
            m = ctx == c
            p[c] = ((b * m).sum(axis=axes, dtype=np.float64, keepdims=True)[0] + smoothing * p_pos) / (
                m.sum(axis=axes, dtype=np.float64, keepdims=True)[0] + smoothing)
    return np.clip(np.rint(p * P_SCALE), 1, P_SCALE - 1).astype(np.uint16)


@dataclass
class EntropyFit:
    """The model chosen for one configuration and how every candidate did on validation."""
    model: BitContextModel
    candidates: List[dict]


def fit_entropy_model(train: np.ndarray, val: np.ndarray, max_table_bytes: int = 1 << 18) -> EntropyFit:
    """Fit every candidate on ``train`` bits (N, K, T, H, W) — static, and the context model per
    position or shared over T, each at every smoothing in ``SMOOTHING`` — and keep the one with
    the smallest mean ideal code length on ``val``, among tables of at most ``max_table_bytes``."""
    if len(train) < 1 or len(val) < 1 or train.shape[1:] != val.shape[1:] or train.ndim != 5:
        raise ValueError(f"need (N, K, T, H, W) train and validation bits of one shape, got "
                         f"{list(train.shape)} and {list(val.shape)}")
    shape = tuple(int(s) for s in train.shape[1:])
    cands: List[dict] = []
    best: Optional[Tuple[float, BitContextModel]] = None
    options = [("static", False, 0.0)] + [("context", st, a) for st in (True, False) for a in SMOOTHING]
    for kind, share, a in options:
        if share and shape[1] == 1:
            continue
        table = fit_table(train, kind, a, share)
        if table.nbytes > max_table_bytes:
            cands.append(dict(kind=kind, share_time=share, smoothing=a, table_bytes=table.nbytes, skipped=True))
            continue
        model = BitContextModel(kind, shape, table, a)
        bytes_val = float(model.code_length_bits(val).mean() / 8)
        cands.append(dict(kind=kind, share_time=share, smoothing=a, table_bytes=table.nbytes,
                          val_ideal_bytes=round(bytes_val, 2)))
        if best is None or bytes_val < best[0]:
            best = (bytes_val, model)
    return EntropyFit(best[1], cands)


__all__ = ["BitContextModel", "ENTROPY_SUFFIX", "EntropyFit", "contexts", "fit_entropy_model", "fit_table"]
