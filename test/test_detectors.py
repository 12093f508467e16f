"""The pretrained SSDLite person detector runs from the wheel's frozen graph with PyTorch:
graph reading, TF 'SAME' padding, batch-norm folding, and detection on real footage."""
import numpy as np
import pytest
import torch

from footage import frames
from how2compress_ros.detectors.base import Box, nms
from how2compress_ros.detectors.metrics import score_frames
from how2compress_ros.detectors.tf_graph_runner import _conv

import how2compress_ros.detectors.ssdlite_person as ssd


@pytest.fixture(scope="module")
def detector():
    try:
        return ssd.SSDLitePersonDetector()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))


def test_graph_has_the_expected_ssd_layout(detector):
    assert detector.anchors.shape == (1917, 4)             # 19x19x3 + (10^2+5^2+3^2+2^2+1)x6
    h = detector.anchors[:, 2] - detector.anchors[:, 0]
    assert (h > 0).all()
    conv = detector.runner.nodes["FeatureExtractor/MobilenetV2/Conv/weights"].attrs["value"]
    assert conv.shape == (3, 3, 3, 32) and conv.dtype == np.float32 and np.abs(conv).sum() > 0


@pytest.mark.parametrize("size,k,stride", [(9, 3, 2), (10, 3, 2), (7, 3, 1), (300, 3, 2)])
def test_same_padding_matches_tf_definition(size, k, stride):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, size, size, 2)).astype(np.float32)
    w = rng.standard_normal((4, 2, k, k)).astype(np.float32)
    got = _conv(torch.from_numpy(x), torch.from_numpy(w), [1, stride, stride, 1], "SAME").numpy()
    out = -(-size // stride)
    total = max((out - 1) * stride + k - size, 0)
    before = total // 2                                     # TF puts the extra pixel after
    xp = np.pad(x, ((0, 0), (before, total - before), (before, total - before), (0, 0)))
    ref = np.zeros((1, out, out, 4), np.float32)
    for i in range(out):
        for j in range(out):
            patch = xp[0, i * stride:i * stride + k, j * stride:j * stride + k, :]   # k,k,2
            ref[0, i, j] = np.einsum("hwc,ochw->o", patch, w)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


def test_folded_batch_norm_gives_the_same_outputs(detector):
    x = detector.preprocess(np.random.default_rng(1).integers(0, 256, (200, 300, 3), dtype=np.uint8))
    folded = detector.runner.run(detector._plan, list(ssd.OUTPUTS), {ssd.FEED: x})
    saved = dict(detector.runner._folded)
    cache = getattr(detector.runner, "_oihw_cache", {})
    try:
        detector.runner._folded.clear()
        detector.runner._oihw_cache = {}
        plain = detector.runner.run(detector._plan, list(ssd.OUTPUTS), {ssd.FEED: x})
    finally:
        detector.runner._folded.update(saved)
        detector.runner._oihw_cache = cache
    for a, b in zip(folded, plain):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-3)


def test_finds_the_person_in_real_footage_and_nothing_in_a_blank_frame(detector):
    clip = frames("carphone_pristine.mp4", 30)
    found = [detector.detect(f) for f in clip[::5]]
    assert all(len(b) == 1 for b in found)
    for boxes in found:
        b = boxes[0]
        assert b.score > 0.5 and b.x_max - b.x_min > 40 and b.y_max - b.y_min > 60  # the man fills the frame
    assert detector.detect(np.full((144, 176, 3), 128, np.uint8)) == []


def test_nms_keeps_the_best_of_overlapping_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
    keep = nms(boxes, np.array([0.6, 0.9, 0.5]), iou_threshold=0.5, max_out=10)
    assert list(keep) == [1, 2]


def box(x, y, s=10, score=0.9):
    return Box(x, y, x + s, y + s, score)


def test_f1_and_ap_against_reference_detections():
    ref = [[box(0, 0), box(50, 50)], [box(20, 20)], []]
    assert score_frames(ref, ref).f1 == 1.0 and score_frames(ref, ref).ap50 == pytest.approx(1.0)
    pred = [[box(1, 1, score=0.8)], [box(20, 20, score=0.9), box(80, 80, score=0.95)], []]
    s = score_frames(pred, ref)
    assert (s.tp, s.fp, s.fn) == (2, 1, 1)
    assert s.f1 == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    # ranked: fp(0.95) tp(0.9) tp(0.8) -> precision at recall 1/3 = 1/2, at 2/3 = 2/3
    assert s.ap50 == pytest.approx((1 / 3) * (2 / 3) + (1 / 3) * (2 / 3))
    assert score_frames([[]], [[]]).f1 == 1.0
    with pytest.raises(ValueError, match="2 predicted frames vs 1"):
        score_frames([[], []], [[]])


def test_dont_care_band_ignores_borderline_boxes_only():
    ref = [[box(0, 0, score=0.9), box(50, 50, score=0.45)]]
    # borderline reference box not found: no FN; confident one found: TP
    s = score_frames([[box(0, 0, score=0.8)]], ref, confident=0.6)
    assert (s.tp, s.fp, s.fn) == (1, 0, 0)
    # a borderline prediction on empty background is ignored, a confident one is an FP
    s = score_frames([[box(0, 0, score=0.8), box(90, 90, score=0.45), box(120, 120, score=0.7)]], ref,
                     confident=0.6)
    assert (s.tp, s.fp, s.fn) == (1, 1, 0)
    # missing the confident reference box is still an FN
    s = score_frames([[box(50, 50, score=0.9)]], ref, confident=0.6)
    assert (s.tp, s.fp, s.fn) == (0, 0, 1)
    # without the band the same case counts the borderline boxes
    s = score_frames([[box(0, 0, score=0.8)]], ref)
    assert (s.tp, s.fp, s.fn) == (1, 0, 1)


@pytest.mark.parametrize("h,w", [(16, 16), (96, 128), (127, 640), (480, 63)])
def test_hog_detector_survives_frames_smaller_than_its_window(h, w):
    """OpenCV's HOG kills the process (SIGSEGV) on an image smaller than its 64x128 window: a server
    running detector hog would die on one small valid frame. The detector returns no boxes instead;
    this test runs it in a child process so a crash fails the test instead of ending the run."""
    import subprocess
    import sys

    code = ("import numpy as np; from how2compress_ros.detectors.factory import make_detector; "
            f"print(len(make_detector('hog').detect(np.full(({h}, {w}, 3), 128, np.uint8))))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "0", proc.stderr[-500:]


def test_hog_detector_finds_people_in_real_footage():
    """The HOG detector (detector: hog) on vtest frames: boxes inside the frame, scores at or above
    its threshold, people found in most frames and nothing in a blank one."""
    from how2compress_ros.detectors.factory import make_detector

    det = make_detector("hog", score_threshold=0.5)
    found = 0
    for rgb in frames("vtest.avi", 6):
        h, w = rgb.shape[:2]
        boxes = det.detect(rgb)
        found += bool(boxes)
        for b in boxes:
            assert 0 <= b.x_min < b.x_max <= w and 0 <= b.y_min < b.y_max <= h and b.score >= 0.5
    assert found >= 4
    assert det.detect(np.full((480, 640, 3), 128, np.uint8)) == []
