"""ApproxBit's asymmetric binary encoder / decoder (§3.3-3.5).

Edge (``BinaryEncoder``): optional spatial encoder (one Conv3d, kernel 2, stride 2, halving
T, H, W), then the channel compressor (one 1x1x1 Conv3d, D -> K), sigmoid, threshold at 0.5.
In training the threshold passes gradients straight through. The spatial encoder is depthwise
by default (``spatial_mixing="depthwise"``: a dense 3x3x3 one cost 9.8 % of the small CNN's
FLOPs on its large early maps, the depthwise one 0.2 %; the channel compressor after it mixes
channels) or dense (``"dense"``: D x D x 2x2x2, the paper's plain Conv3d, cheap on a ViT's
small token grid, where tokens carry little spatial smoothness for a per-channel filter).

Optional position mean (``position_mean_shape=(T, H, W)``): both sides hold the same fixed
per-position mean feature map (D x T x H x W, estimated from training clips); the encoder
codes x - mean and the decoder adds it back. A ViT's residual stream is dominated by its
position embeddings (on our VideoMAE two thirds of the feature variance at the offload points
is the same for every clip): without the mean the codes learn to spell out *where* a token is
- constant bits that carry nothing about the clip - and the spatially-encoded configurations
collapse to chance. The mean costs one subtraction per element on the edge.

Server (``BinaryDecoder``): codebook M in R^{D x K} (y = M z), then the heavier decoder: two
3D ResBlocks, one self-attention layer over the T*H*W positions, and a transposed convolution
that restores T, H, W when the spatial encoder is on.

Loss (``ApproxBitLoss``, Eq. 3): CE(task) + lambda1 * MSE(decoded, original features)
+ lambda2 * BCE(sigmoid(X'), round(sigmoid(X'))).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F


SPATIAL_MIXING = ("depthwise", "dense")


@dataclass
class BinaryCodecConfig:
    channels: int                 # D: channels of the feature map at the offload point
    codebook_size: int            # K: code bits per position
    spatial_encoder: bool = False
    attention_heads: int = 4
    spatial_mixing: str = "depthwise"   # spatial encoder: "depthwise" or "dense" Conv3d
    position_mean_shape: Optional[Tuple[int, int, int]] = None   # (T, H, W) of the map: see above
    # DeepCOD-style baseline: the codes stay float (no sigmoid / threshold) and travel as
    # float32; the architecture is otherwise identical
    float_codes: bool = False

    def validate(self) -> None:
        if self.channels < 1 or self.codebook_size < 1:
            raise ValueError(f"channels and codebook_size must be positive, got {self}")
        if self.spatial_mixing not in SPATIAL_MIXING:
            raise ValueError(f"spatial_mixing must be one of {SPATIAL_MIXING}, got {self.spatial_mixing!r}")


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
        groups = d if config.spatial_mixing == "depthwise" else 1
        self.spatial = nn.Conv3d(d, d, kernel_size=2, stride=2, groups=groups) if config.spatial_encoder else None
        self.compress = nn.Conv3d(d, config.codebook_size, kernel_size=1)
        _add_position_mean(self, config)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """X' (pre-sigmoid), (B, K, T', H', W')."""
        if self.position_mean is not None:
            x = x - _checked_mean(self.position_mean, x)
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


def _add_position_mean(module: nn.Module, config: BinaryCodecConfig) -> None:
    shape = config.position_mean_shape
    module.register_buffer("position_mean", None if shape is None else torch.zeros(1, config.channels, *shape))


def _checked_mean(mean: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    if tuple(x.shape[1:]) != tuple(mean.shape[1:]):
        raise ValueError(f"feature map {tuple(x.shape[1:])} does not match the codec's position mean "
                         f"{tuple(mean.shape[1:])}")
    return mean


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
        _add_position_mean(self, config)

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
        if self.position_mean is not None:
            y = y + _checked_mean(self.position_mean, y)
        return y


class ApproxBitLoss(nn.Module):
    """Eq. 3: task + lambda1 * reconstruction MSE + lambda2 * binary BCE. The task term is the
    cross-entropy with the labels; with ``temperature`` > 0 and the frozen backbone's own logits
    (``teacher_logits``) it adds KL(teacher || ours) at that temperature (x T², Hinton et al.),
    which is the whole task term for unlabelled clips (labels < 0): the label-free codec of
    ApproxBit, whose backbone is frozen and so its own teacher."""

    def __init__(self, lambda_recon: float = 1.0, lambda_binary: float = 1.0, temperature: float = 0.0):
        super().__init__()
        self.lambda_recon, self.lambda_binary, self.temperature = lambda_recon, lambda_binary, temperature

    def forward(self, logits, labels, features, reconstructed, x_prime, teacher_logits=None):
        labelled = labels >= 0
        task = F.cross_entropy(logits[labelled], labels[labelled]) if labelled.any() else logits.sum() * 0.0
        if self.temperature > 0:
            if teacher_logits is None:
                raise ValueError("a distillation temperature needs the teacher's logits")
            t = self.temperature
            task = task + F.kl_div(F.log_softmax(logits / t, 1), F.log_softmax(teacher_logits / t, 1),
                                   log_target=True, reduction="batchmean") * t * t
        elif not labelled.all():
            raise ValueError("unlabelled clips need a distillation temperature > 0")
        recon = F.mse_loss(reconstructed, features)
        s = torch.sigmoid(x_prime)
        binary = F.binary_cross_entropy(s, torch.round(s).detach())
        total = task + self.lambda_recon * recon + self.lambda_binary * binary
        return total, {"task": task.item(), "recon": recon.item(), "binary": binary.item()}
