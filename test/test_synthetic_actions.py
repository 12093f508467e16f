"""The synthetic action dataset: deterministic by (split, index), distinct splits, balanced
evaluation splits, classes that differ by motion, and usable as a camera stream."""
import numpy as np
import pytest

from approxbit_ros.data.synthetic_actions import CLASSES, SyntheticActionFrames, SyntheticActions
from offload_common.frame_sources import FrameStream, open_source


def test_at_least_twelve_classes_with_opposite_pairs():
    assert len(CLASSES) >= 12
    for a, b in [("moving left", "moving right"), ("approaching", "receding"),
                 ("rotating clockwise", "rotating counter-clockwise"), ("appearing", "disappearing")]:
        assert a in CLASSES and b in CLASSES


def test_clips_are_deterministic_and_splits_differ():
    a, b = SyntheticActions("train", 10), SyntheticActions("train", 10)
    for i in (0, 7):
        np.testing.assert_array_equal(a[i][0], b[i][0])
        assert a[i][1] == b[i][1]
    clip, _ = a[0]
    assert clip.shape == (16, 64, 64, 3) and clip.dtype == np.uint8
    assert not np.array_equal(SyntheticActions("test", 1)[0][0], SyntheticActions("val", 1)[0][0])
    with pytest.raises(ValueError, match="unknown split"):
        SyntheticActions("dev")
    with pytest.raises(IndexError):
        a[10]


def test_evaluation_splits_are_balanced():
    labels = [SyntheticActions("test", 26)[i][1] for i in range(26)]
    assert np.bincount(labels).tolist() == [2] * len(CLASSES)


def marker(frame):
    """The white rotation marker: the brightest pixels (lighting scales the whole frame), grey,
    and far brighter than the background can be."""
    f = frame.astype(int)
    top = f.min(axis=2)
    return (top >= 0.97 * f.max()) & (top > 150)


def centroid_track(clip):
    """Track the object by its marker."""
    pts = []
    for f in clip:
        ys, xs = np.where(marker(f))
        pts.append((xs.mean(), ys.mean()) if len(xs) else (np.nan, np.nan))
    return np.array(pts)


def test_direction_classes_move_the_object_the_right_way():
    ds = SyntheticActions("test", len(CLASSES))
    for name, axis, sign in [("moving left", 0, -1), ("moving right", 0, 1), ("moving up", 1, -1),
                             ("falling down", 1, 1)]:
        clip, label = ds[CLASSES.index(name)]
        assert CLASSES[label] == name
        track = centroid_track(clip)
        assert sign * (track[-1, axis] - track[0, axis]) > 10, name


def test_appearing_and_disappearing_reverse_in_time():
    ds = SyntheticActions("test", len(CLASSES))
    appear, _ = ds[CLASSES.index("appearing")]
    vanish, _ = ds[CLASSES.index("disappearing")]
    white = lambda f: marker(f).sum() if marker(f).sum() > 2 else 0  # noqa: E731
    assert white(appear[0]) == 0 and white(appear[-1]) > 0
    assert white(vanish[0]) > 0 and white(vanish[-1]) == 0


def test_usable_as_a_camera_source():
    stream = FrameStream(open_source("actions", width=128, height=96), loop=False, max_frames=40)
    frames = [f for f in iter(stream.next_frame, None)]
    assert len(frames) == 40 and frames[0].rgb.shape == (96, 128, 3)
    src = stream.source
    assert isinstance(src, SyntheticActionFrames) and src.labels[:3] == [0, 1, 2]
