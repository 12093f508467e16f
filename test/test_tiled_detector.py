"""Tiled detection finds objects too small for a detector's fixed input size, maps their boxes back
to frame coordinates, and reports an object lying across a tile border once, whole."""
import numpy as np
import pytest

from how2compress_ros.detectors.base import Box
from how2compress_ros.detectors.tiled import TiledDetector, parse_tiles, tile_spans

import cv2


class FixedInputBlobDetector:
    """A detector with a fixed input size, like SSD: the frame is shrunk to ``size``×``size`` and
    bright blobs of at least ``min_area`` input pixels are reported, in frame pixels."""

    name = "blobs"

    def __init__(self, size: int = 64, min_area: int = 6):
        self.size, self.min_area = size, min_area

    def detect(self, rgb):
        h, w = rgb.shape[:2]
        small = cv2.resize(rgb[:, :, 0], (self.size, self.size), interpolation=cv2.INTER_AREA)
        n, _, stats, _ = cv2.connectedComponentsWithStats((small > 128).astype(np.uint8))
        sx, sy = w / self.size, h / self.size
        return [Box(x * sx, y * sy, (x + bw) * sx, (y + bh) * sy, score=min(1.0, a / 50))
                for x, y, bw, bh, a in stats[1:] if a >= self.min_area]


def frame_with(rects, shape=(480, 640)):
    f = np.zeros(shape + (3,), np.uint8)
    for x0, y0, x1, y1 in rects:
        f[y0:y1, x0:x1] = 255
    return f


@pytest.mark.parametrize("length,parts,overlap", [(640, 2, 0.25), (480, 3, 0.2), (577, 2, 0.0), (100, 1, 0.5)])
def test_tile_spans_cover_the_frame_with_the_requested_overlap(length, parts, overlap):
    spans = tile_spans(length, parts, overlap)
    assert len(spans) == parts and spans[0][0] == 0 and spans[-1][1] == length
    size = spans[0][1] - spans[0][0]
    assert all(b - a == size for a, b in spans)
    for (a0, a1), (b0, _) in zip(spans, spans[1:]):
        assert b0 <= a1                                              # no gap
        assert a1 - b0 >= int(overlap * size) - 1                    # shared part


def test_a_small_object_missed_on_the_whole_frame_is_found_on_tiles_at_its_place():
    rect = (300, 100, 312, 112)                                      # 12×12 px: 1.2×1.6 input px whole
    f = frame_with([rect])
    base = FixedInputBlobDetector()
    assert base.detect(f) == []
    (box,) = TiledDetector(base, 3, 3).detect(f)
    assert np.allclose(box.as_array(), rect, atol=640 / 64 / 3 + 1)


def test_an_object_across_a_tile_border_is_reported_once_and_whole():
    rect = (290, 200, 350, 280)                                      # straddles the 2x2 tiles' borders
    f = frame_with([rect])
    det = TiledDetector(FixedInputBlobDetector(), 2, 2, overlap=0.1, whole_frame=True)
    (box,) = det.detect(f)
    assert np.allclose(box.as_array(), rect, atol=12)
    # without the whole-frame pass and with too little overlap to hold it whole, nothing cut is kept
    assert TiledDetector(FixedInputBlobDetector(), 2, 2, overlap=0.05, whole_frame=False).detect(f) == []


def test_objects_of_different_classes_are_not_merged():
    class TwoClasses(FixedInputBlobDetector):
        def detect(self, rgb):
            return [Box(b.x_min, b.y_min, b.x_max, b.y_max, b.score, class_id=c)
                    for b in super().detect(rgb) for c in (1, 2)]

    f = frame_with([(100, 100, 200, 200)])
    boxes = TiledDetector(TwoClasses(), 2, 2).detect(f)
    assert sorted(b.class_id for b in boxes) == [1, 2]


@pytest.mark.parametrize("spec", ["2", "0x2", "2x9", "axb", "2x2x2"])
def test_bad_tile_specs_are_refused(spec):
    with pytest.raises(ValueError, match="tiles"):
        parse_tiles(spec)


def test_tile_specs_parse():
    assert parse_tiles("") == (1, 1) and parse_tiles("2X3") == (2, 3)


def test_make_detector_wraps_the_named_detector_in_tiles():
    from how2compress_ros.detectors.factory import make_detector

    det = make_detector("hog", tiles="2x3")
    assert isinstance(det, TiledDetector) and (det.rows, det.cols) == (2, 3) and det.name == "hog-tiles2x3"
    assert not isinstance(make_detector("hog", tiles="1x1"), TiledDetector)
    with pytest.raises(ValueError, match="tiles"):
        make_detector("ssdlite", tiles="two")


def test_one_tile_is_exactly_the_wrapped_detector():
    """Untiled, the wrapper adds nothing, not even a second NMS: one tile is the whole frame."""
    class Overlapping(FixedInputBlobDetector):
        def detect(self, rgb):           # IoU 0.82, so NMS would merge them; on the whole frame only
            return [Box(0, 0, 100, 100, 0.9), Box(10, 0, 110, 100, 0.8)] if rgb.shape[1] == 640 else []

    f = frame_with([])
    assert TiledDetector(Overlapping(), 1, 1).detect(f) == Overlapping().detect(f)
    assert len(TiledDetector(Overlapping(), 2, 2).detect(f)) == 1
