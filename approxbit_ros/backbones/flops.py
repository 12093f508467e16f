"""FLOP counting with PyTorch's own FlopCounterMode (counts aten matmul / conv / attention ops),
and the choice of offload points at fractions of a backbone's FLOPs."""
from __future__ import annotations

from typing import Callable, List, Sequence

import torch
from torch.utils.flop_counter import FlopCounterMode


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs (2 per multiply-add) of running ``fn()`` once."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def cumulative_block_flops(backbone, clip: torch.Tensor) -> List[int]:
    """FLOPs of the edge part for every offload point o = 0..num_blocks (o = num_blocks: the
    whole feature extractor), plus the head in the last entry."""
    out = []
    for o in range(backbone.num_blocks + 1):
        out.append(count_flops(lambda: backbone.edge(clip, o)))
    out.append(count_flops(lambda: backbone(clip)))
    return out


def offload_points(cumulative: Sequence[int], fractions=(1 / 3, 2 / 3)) -> List[int]:
    """Block boundaries whose edge FLOPs are closest to each fraction of the total (distinct,
    never 0 or the last block)."""
    total = cumulative[-1]
    inner = list(range(1, len(cumulative) - 2))
    chosen = []
    for f in fractions:
        best = min((o for o in inner if o not in chosen), key=lambda o: abs(cumulative[o] / total - f))
        chosen.append(best)
    return chosen
