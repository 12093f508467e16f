"""Tiled detection: run a detector on overlapping tiles of a large frame (and on the whole frame),
so that small people are seen near the detector's input resolution instead of shrunk with the
frame (SSDLite sees 300×300; a 768×576 frame shrinks 2.5×, a 1080p one 6×).

Boxes from a tile that touch one of the tile's inner edges are cut people; they are dropped,
because the overlap or the whole-frame pass sees those people whole. What is left is merged by
NMS, class by class. ``TiledDetector`` wraps any ``Detector``.
"""
from __future__ import annotations

from typing import List, Tuple

import numpy as np

from how2compress_ros.detectors.base import Box, Detector, nms


def parse_tiles(spec: str) -> Tuple[int, int]:
    """``"2x2"`` -> (rows, cols); ``""`` or ``"1x1"`` -> (1, 1)."""
    if not spec:
        return 1, 1
    try:
        rows, cols = (int(v) for v in spec.lower().split("x"))
    except ValueError:
        raise ValueError(f"tiles must look like ROWSxCOLS (e.g. 2x2), got {spec!r}") from None
    if not (1 <= rows <= 8 and 1 <= cols <= 8):
        raise ValueError(f"tiles must be 1..8 rows and columns, got {spec!r}")
    return rows, cols


def tile_spans(length: int, parts: int, overlap: float) -> List[Tuple[int, int]]:
    """``parts`` windows covering 0..length, neighbours sharing ``overlap`` of a window."""
    if parts == 1:
        return [(0, length)]
    size = int(np.ceil(length / (parts - (parts - 1) * overlap)))
    starts = np.linspace(0, length - size, parts).round().astype(int)
    return [(int(s), int(s) + size) for s in starts]


class TiledDetector:
    """``detector`` on ``rows``×``cols`` overlapping tiles plus (``whole_frame``) the full frame."""

    def __init__(self, detector: Detector, rows: int = 2, cols: int = 2, overlap: float = 0.25,
                 whole_frame: bool = True, iou_threshold: float = 0.5, edge_margin: int = 2):
        if not 0.0 <= overlap < 1.0:
            raise ValueError(f"overlap must be in [0, 1), got {overlap}")
        self.detector, self.rows, self.cols, self.overlap = detector, rows, cols, overlap
        self.whole_frame, self.iou_threshold, self.edge_margin = whole_frame, iou_threshold, edge_margin
        self.name = detector.name if rows * cols == 1 else f"{detector.name}-tiles{rows}x{cols}"

    def windows(self, height: int, width: int) -> List[Tuple[int, int, int, int]]:
        """(y0, y1, x0, x1) of every tile."""
        return [(y0, y1, x0, x1) for y0, y1 in tile_spans(height, self.rows, self.overlap)
                for x0, x1 in tile_spans(width, self.cols, self.overlap)]

    def detect(self, rgb: np.ndarray) -> List[Box]:
        if self.rows * self.cols == 1:                  # one tile: exactly the wrapped detector
            return list(self.detector.detect(rgb))
        height, width = rgb.shape[:2]
        found: List[Box] = list(self.detector.detect(rgb)) if self.whole_frame else []
        m = self.edge_margin
        for y0, y1, x0, x1 in self.windows(height, width):
            for b in self.detector.detect(np.ascontiguousarray(rgb[y0:y1, x0:x1])):
                cut = ((x0 > 0 and b.x_min <= m) or (y0 > 0 and b.y_min <= m)
                       or (x1 < width and b.x_max >= x1 - x0 - m) or (y1 < height and b.y_max >= y1 - y0 - m))
                if not cut:
                    found.append(Box(b.x_min + x0, b.y_min + y0, b.x_max + x0, b.y_max + y0, b.score,
                                     b.class_id, b.label))
        kept: List[Box] = []
        for cls in sorted({b.class_id for b in found}):
            same = [b for b in found if b.class_id == cls]
            keep = nms(np.stack([b.as_array() for b in same]), np.array([b.score for b in same], np.float32),
                       self.iou_threshold, len(same))
            kept += [same[i] for i in keep]
        return sorted(kept, key=lambda b: -b.score)
