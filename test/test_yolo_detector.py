"""The Ultralytics YOLO / TensorRT-engine detector path, checked against a stand-in ``ultralytics``
package: the real one cannot run here (it needs torchvision, whose PyPI wheels are CUDA builds
that do not load beside the CPU torch), so these tests pin down our side of the boundary — what
``UltralyticsDetector`` hands to ``YOLO.predict`` and how it reads the results back — using the
result attributes Ultralytics documents (``boxes.xyxy``, ``boxes.conf``, ``boxes.cls``, ``names``)."""
import sys
import textwrap

import numpy as np
import pytest

from how2compress_ros.detectors.factory import UltralyticsDetector, make_detector
from how2compress_ros.detectors.tiled import TiledDetector

STAND_IN = '''
import numpy as np

calls = []


class _Tensor:
    def __init__(self, rows):
        self._rows = rows

    def tolist(self):
        return [list(r) if isinstance(r, (list, tuple)) else r for r in self._rows]


class _Boxes:
    def __init__(self, xyxy, conf, cls):
        self.xyxy, self.conf, self.cls = _Tensor(xyxy), _Tensor(conf), _Tensor(cls)


class _Result:
    names = {0: "person", 2: "car"}

    def __init__(self, boxes):
        self.boxes = boxes


class YOLO:
    """Finds one 'person' where the image's blue channel (BGR index 0) is brightest, none in a
    frame without blue."""

    def __init__(self, weights):
        calls.append(("load", weights))

    def predict(self, image, conf, classes, device, verbose):
        calls.append(("predict", image.copy(), conf, classes, device, verbose))
        if not image[:, :, 0].any():
            return [_Result(_Boxes([], [], []))]
        y, x = np.unravel_index(np.argmax(image[:, :, 0]), image.shape[:2])
        return [_Result(_Boxes([(x - 4.0, y - 8.0, x + 4.0, y + 8.0)], [0.91], [0.0]))]
'''


@pytest.fixture
def ultralytics(tmp_path, monkeypatch):
    pkg = tmp_path / "site" / "ultralytics"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent(STAND_IN))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "ultralytics", raising=False)
    import ultralytics as module
    yield module
    sys.modules.pop("ultralytics", None)


@pytest.fixture
def weights(tmp_path):
    path = tmp_path / "yolo.engine"
    path.write_bytes(b"not read by the stand-in")
    return str(path)


def test_hands_yolo_a_bgr_frame_and_reads_person_boxes_back(ultralytics, weights):
    det = UltralyticsDetector(weights, score_threshold=0.35, device="cuda:0")
    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[20, 30] = (0, 0, 255)          # bright blue in RGB: the stand-in looks at BGR channel 0
    rgb[5, 5] = (255, 0, 0)            # bright red: must not be what it finds
    boxes = det.detect(rgb)
    (_, image, conf, classes, device, verbose), = [c for c in ultralytics.calls if c[0] == "predict"]
    np.testing.assert_array_equal(image, rgb[:, :, ::-1])
    assert (conf, classes, device, verbose) == (0.35, [0], "cuda:0", False)
    assert ("load", weights) in ultralytics.calls
    assert len(boxes) == 1
    b = boxes[0]
    assert (b.x_min, b.y_min, b.x_max, b.y_max) == (26.0, 12.0, 34.0, 28.0)
    assert b.score == pytest.approx(0.91)
    assert (b.class_id, b.label) == (1, "person")    # COCO class 0 -> label id 1, as SSDLite's


def test_no_device_lets_ultralytics_choose(ultralytics, weights):
    UltralyticsDetector(weights).detect(np.zeros((32, 32, 3), np.uint8))
    assert ultralytics.calls[-1][4] is None


def test_missing_weights_is_a_clear_error_before_importing_ultralytics(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ultralytics", None)     # import would fail
    with pytest.raises(FileNotFoundError, match="detector_weights"):
        UltralyticsDetector(str(tmp_path / "missing.pt"))
    with pytest.raises(FileNotFoundError, match="detector_weights"):
        UltralyticsDetector("")


def test_missing_ultralytics_names_the_package(weights, monkeypatch):
    monkeypatch.setitem(sys.modules, "ultralytics", None)
    with pytest.raises(ImportError, match="pip install ultralytics"):
        UltralyticsDetector(weights)


def test_factory_builds_it_plain_or_tiled(ultralytics, weights):
    plain = make_detector("yolo", weights, score_threshold=0.4)
    assert isinstance(plain, UltralyticsDetector) and plain.name == "yolo" and plain.score_threshold == 0.4
    tiled = make_detector("yolo", weights, tiles="2x2")
    assert isinstance(tiled, TiledDetector)
    rgb = np.zeros((64, 96, 3), np.uint8)
    rgb[40, 70] = (0, 0, 255)
    found = tiled.detect(rgb)                  # whole frame and the tiles that hold the pixel, merged
    assert [b.as_array().tolist() for b in found] == [[66.0, 32.0, 74.0, 48.0]]
    assert found[0].class_id == 1
