"""ApproxBit's asymmetric binary encoder / decoder (§3.3-3.5).

Edge (``BinaryEncoder``): optional spatial encoder (one Conv3d halving T, H, W: depthwise,
kernel 2, stride 2 — a dense 3x3x3 one cost 9.8 % of our small backbone's FLOPs, this one
0.2 %; the channel compressor after it mixes channels), then the channel compressor (one
1x1x1 Conv3d, D -> K), sigmoid, threshold at 0.5. In training the threshold passes gradients
straight through.

Server (``BinaryDecoder``): codebook M in R^{D x K} (y = M z), then the heavier decoder: two
3D ResBlocks, one self-attention layer over the T*H*W positions, and a transposed convolution
that restores T, H, W when the spatial encoder is on.

Loss (``ApproxBitLoss``, Eq. 3): CE(task) + lambda1 * MSE(decoded, original features)
+ lambda2 * BCE(sigmoid(X'), round(sigmoid(X'))).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class BinaryCodecConfig:
    channels: int                 # D: channels of the feature map at the offload point
    codebook_size: int            # K: code bits per position
    spatial_encoder: bool = False
    attention_heads: int = 4
    # DeepCOD-style baseline: the codes stay float (no sigmoid / threshold) and travel as
    # float32; the architecture is otherwise identical
    float_codes: bool = False

    def validate(self) -> None:
        if self.channels < 1 or self.codebook_size < 1:
            raise ValueError(f"channels and codebook_size must be positive, got {self}")


def binarize(x_prime: torch.Tensor) -> torch.Tensor:
    """sigmoid + threshold 0.5 (i.e. x' > 0), straight-through gradient of the sigmoid."""
    soft = torch.sigmoid(x_prime)
    hard = (soft > 0.5).to(soft.dtype)
    return soft + (hard - soft).detach()


class BinaryEncoder(nn.Module):
    def __init__(self, config: BinaryCodecConfig):
        super().__init__()
        config.validate()
        self.config = config
        d = config.channels
        self.spatial = nn.Conv3d(d, d, kernel_size=2, stride=2, groups=d) if config.spatial_encoder else None
        self.compress = nn.Conv3d(d, config.codebook_size, kernel_size=1)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """X' (pre-sigmoid), (B, K, T', H', W')."""
        if self.spatial is not None:
            pads = [p for d in reversed(x.shape[2:]) for p in (0, d % 2)]   # odd sizes: ceil(d / 2)
            x = self.spatial(F.pad(x, pads, mode="replicate") if any(pads) else x)
        return self.compress(x)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(codes in {0,1} with straight-through gradient — or X' itself with float codes, X')."""
        xp = self.logits(x)
        return (xp if self.config.float_codes else binarize(xp)), xp

    @torch.no_grad()
    def encode_bits(self, x: torch.Tensor) -> torch.Tensor:
        """Inference: uint8 codes (B, K, T', H', W')."""
        return (self.logits(x) > 0).to(torch.uint8)

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Inference: what is transmitted — uint8 bits, or float32 codes with ``float_codes``."""
        return self.logits(x).float() if self.config.float_codes else self.encode_bits(x)


class ResBlock3d(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv1 = nn.Conv3d(c, c, 3, padding=1)
        self.conv2 = nn.Conv3d(c, c, 3, padding=1)
        self.norm1 = nn.GroupNorm(_groups(c), c)
        self.norm2 = nn.GroupNorm(_groups(c), c)

    def forward(self, x):
        # pre-activation: the identity path stays linear, so features keep their sign
        h = self.conv1(F.gelu(self.norm1(x)))
        return x + self.conv2(F.gelu(self.norm2(h)))


class SelfAttention3d(nn.Module):
    """Self-attention over the T*H*W positions. On large maps the keys / values are average-
    pooled (2x steps in T, H, W) down to at most ``max_kv`` positions, queries stay at full
    resolution (spatial-reduction attention, as in PVT): the full 4096x4096 attention of an
    early offload point cost 5.6 s per training step on this CPU."""

    def __init__(self, c: int, heads: int, max_kv: int = 1024):
        super().__init__()
        heads = max(1, min(heads, c))
        while c % heads:
            heads -= 1
        self.max_kv = max_kv
        self.norm = nn.LayerNorm(c)
        self.attn = nn.MultiheadAttention(c, heads, batch_first=True)

    def forward(self, x):
        b, c, t, h, w = x.shape
        seq = x.flatten(2).transpose(1, 2)                   # (B, THW, C)
        q = self.norm(seq)
        kv_map = x
        while kv_map.shape[2] * kv_map.shape[3] * kv_map.shape[4] > self.max_kv:
            kv_map = F.avg_pool3d(kv_map, kernel_size=[2 if d > 1 else 1 for d in kv_map.shape[2:]],
                                  ceil_mode=True)
        kv = q if kv_map is x else self.norm(kv_map.flatten(2).transpose(1, 2))
        out, _ = self.attn(q, kv, kv, need_weights=False)
        return (seq + out).transpose(1, 2).reshape(b, c, t, h, w)


def _groups(c: int) -> int:
    for g in (8, 4, 2, 1):
        if c % g == 0:
            return g
    return 1


class BinaryDecoder(nn.Module):
    def __init__(self, config: BinaryCodecConfig):
        super().__init__()
        config.validate()
        self.config = config
        d, k = config.channels, config.codebook_size
        self.codebook = nn.Parameter(torch.randn(d, k) / k ** 0.5)      # M in R^{D x K}
        self.res1 = ResBlock3d(d)
        self.attn = SelfAttention3d(d, config.attention_heads)
        self.res2 = ResBlock3d(d)
        self.up = nn.ConvTranspose3d(d, d, kernel_size=4, stride=2, padding=1) if config.spatial_encoder else None

    def forward(self, z: torch.Tensor, out_shape: Tuple[int, int, int] = None) -> torch.Tensor:
        """z: codes (B, K, T', H', W') as float 0/1. Returns features (B, D, T, H, W);
        ``out_shape`` = (T, H, W) of the original map (needed with the spatial encoder when a
        dimension was odd)."""
        y = torch.einsum("dk,bkthw->bdthw", self.codebook, z.to(self.codebook.dtype))
        y = self.res2(self.attn(self.res1(y)))
        if self.up is not None:
            y = self.up(y)
            if out_shape is not None:
                y = y[:, :, : out_shape[0], : out_shape[1], : out_shape[2]]
        return y


class ApproxBitLoss(nn.Module):
    """Eq. 3: task CE + lambda1 * reconstruction MSE + lambda2 * binary BCE."""

    def __init__(self, lambda_recon: float = 1.0, lambda_binary: float = 1.0):
        super().__init__()
        self.lambda_recon, self.lambda_binary = lambda_recon, lambda_binary

    def forward(self, logits, labels, features, reconstructed, x_prime):
        task = F.cross_entropy(logits, labels)
        recon = F.mse_loss(reconstructed, features)
        s = torch.sigmoid(x_prime)
        binary = F.binary_cross_entropy(s, torch.round(s).detach())
        total = task + self.lambda_recon * recon + self.lambda_binary * binary
        return total, {"task": task.item(), "recon": recon.item(), "binary": binary.item()}
