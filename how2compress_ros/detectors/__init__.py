"""Detectors behind one interface (``Detector.detect(rgb) -> [Box]``) and detection metrics."""
from how2compress_ros.detectors.base import Box, Detector, nms

__all__ = ["Box", "Detector", "nms"]
