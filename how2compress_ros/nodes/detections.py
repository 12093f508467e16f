"""Filling DetectionArray from library boxes (server node; edge node in edge-only mode)."""
from __future__ import annotations

from edge_offload.msg import Detection


def fill_detection_array(out, boxes, *, header, stream_id: str, seq: int, config_id: str, width: int,
                         height: int, detector: str) -> None:
    out.header = header
    out.stream_id, out.seq, out.config_id = stream_id, int(seq), config_id
    out.image_width, out.image_height = int(width), int(height)
    out.detector = detector
    out.detections = [Detection(class_id=b.class_id, label=b.label, score=b.score, x_min=b.x_min, y_min=b.y_min,
                                x_max=b.x_max, y_max=b.y_max) for b in boxes]
