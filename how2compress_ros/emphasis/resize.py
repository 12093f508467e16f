"""Antialiased bilinear downsampling by an integer factor, as a separable strided convolution.

``F.interpolate(..., antialias=True)`` (PyTorch's, PIL's filter) has no ONNX export; for an
integer factor ``d`` it is a triangle filter of 2d taps per output pixel, renormalised where taps
fall outside the image. The same written as two depthwise convolutions (and a division by the
same convolutions of ones at the borders) exports, and matches ``F.interpolate`` to float32
rounding (1e-7 on 0..1 images). The EA model uses it when it is exported."""
from __future__ import annotations

from typing import Tuple

import numpy as np
import torch
import torch.nn.functional as F


def triangle_taps(d: int) -> Tuple[torch.Tensor, int]:
    """The 2d filter weights of an output pixel and the offset of its first tap from d * i."""
    i = 4                                                   # any interior output pixel
    center, support = d * (i + 0.5), float(d)
    first, last = int(center - support + 0.5), int(center + support + 0.5)
    weights = [max(0.0, 1.0 - abs((k - center + 0.5) / d)) for k in range(first, last)]
    return torch.tensor(weights, dtype=torch.float32), first - d * i


def antialiased_downsample(x: torch.Tensor, d: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, H // d, W // d), as ``F.interpolate(x, scale_factor=1 / d,
    mode="bilinear", align_corners=False, antialias=True)``."""
    if d == 1:
        return x
    taps, offset = triangle_taps(d)
    n = len(taps)
    _, c, h, w = x.shape

    def along(t: torch.Tensor, axis: int) -> torch.Tensor:
        size, channels = int(t.shape[axis]), int(t.shape[1])
        out = size // d
        pad = (-offset, max(0, (out - 1) * d + offset + n - size))
        # the kernel as a constant of known shape (what the ONNX exporter needs for a convolution)
        shape = (channels, 1, n, 1) if axis == 2 else (channels, 1, 1, n)
        kernel = torch.from_numpy(np.tile(taps.numpy().reshape(shape[1:]), (channels, 1, 1, 1)))
        kernel = kernel.to(dtype=t.dtype, device=t.device)
        if axis == 2:
            return F.conv2d(F.pad(t, (0, 0) + pad), kernel, stride=(d, 1), groups=channels)
        return F.conv2d(F.pad(t, pad), kernel, stride=(1, d), groups=channels)

    weight = along(along(torch.ones(1, 1, h, w, dtype=x.dtype, device=x.device), 2), 3)
    return along(along(x, 2), 3) / weight
