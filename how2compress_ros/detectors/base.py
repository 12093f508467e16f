"""The detector interface used by the How2Compress server and by training feedback."""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Protocol

import numpy as np


@dataclass
class Box:
    """One detection in pixel coordinates (x_min, y_min, x_max, y_max), origin top-left."""
    x_min: float
    y_min: float
    x_max: float
    y_max: float
    score: float
    class_id: int = 1
    label: str = "person"

    def as_array(self) -> np.ndarray:
        return np.array([self.x_min, self.y_min, self.x_max, self.y_max], np.float32)


class Detector(Protocol):
    """Anything that turns an RGB frame into boxes. ``name`` identifies it in messages."""

    name: str

    def detect(self, rgb: np.ndarray) -> List[Box]:
        ...


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, max_out: int) -> np.ndarray:
    """Greedy non-maximum suppression; indices of kept boxes, best first."""
    order = np.argsort(-scores)
    keep = []
    x1, y1, x2, y2 = boxes.T
    areas = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    while order.size and len(keep) < max_out:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        w = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        h = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = w * h
        iou = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-9)
        order = rest[iou <= iou_threshold]
    return np.array(keep, np.int64)
