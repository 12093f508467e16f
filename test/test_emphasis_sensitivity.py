"""Detector-sensitivity emphasis targets: integrated-gradient attribution lands on the
macroblocks the detector reads and sums to the detector's output change; levels follow the
cumulative share; the real detector's differentiable scores equal its ordinary ones."""
import numpy as np
import pytest
import torch

from how2compress_ros.emphasis.sensitivity import (SensitivityConfig, frame_attributions, levels_from_attribution,
                                                   macroblock_attribution, neighbour_mean, sensitivity_levels,
                                                   temporal_mean)


class OneMacroblockDetector:
    """Two 'anchors' whose scores read only macroblock (1, 2): its mean and its red channel."""

    def person_scores(self, rgb: torch.Tensor) -> torch.Tensor:
        patch = rgb[16:32, 32:48]
        return torch.sigmoid(torch.stack([patch.mean() / 40 - 2, patch[..., 0].mean() / 30 - 3]))


def test_attribution_is_on_the_macroblock_the_detector_reads_and_sums_to_the_change():
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, (48, 80, 3)).astype(np.uint8)
    low = np.clip(raw.astype(int) + rng.integers(-60, 61, raw.shape), 0, 255).astype(np.uint8)
    low[16:32, 32:48] = 20                              # the read macroblock loses its content
    det = OneMacroblockDetector()
    attr = macroblock_attribution(det, raw, low, steps=16)
    assert attr.shape == (3, 5)
    change = ((det.person_scores(torch.from_numpy(low).float())
               - det.person_scores(torch.from_numpy(raw).float())) ** 2).sum().item()
    assert change > 1e-3
    assert attr[1, 2] == pytest.approx(change, rel=0.05)            # completeness
    others = np.delete(attr.ravel(), 1 * 5 + 2)
    assert np.abs(others).max() < 1e-6


def test_levels_follow_the_cumulative_share():
    attr = np.array([[50.0, 20.0, 10.0, 0.0],
                     [12.0, 5.0, 3.0, -7.0]])          # positive total 100
    levels = levels_from_attribution(attr, shares=(0.5, 0.7, 0.85, 0.95))
    # ranked 50 | 20 | 12 | 10 | 5 | 3; shares held before each: 0, .5, .7, .82, .92, .97
    assert levels.tolist() == [[4, 3, 2, 0], [2, 1, 0, 0]]
    assert levels_from_attribution(attr * 1e-4, min_total=0.02).max() == 0   # nothing to protect
    assert levels_from_attribution(np.zeros((2, 3))).max() == 0


def test_temporal_mean_averages_each_frames_shares_over_its_neighbours():
    a = [np.array([[3.0, 1.0]]), np.array([[0.0, 10.0]]), np.array([[-5.0, 0.001]]), np.array([[2.0, 2.0]])]
    # shares: [.75 .25] | [0 1] | below min_total: [0 0] | [.5 .5]
    out = temporal_mean(a, radius=1, min_total=0.01)
    np.testing.assert_allclose(out[0], [[0.375, 0.625]])               # frames 0-1
    np.testing.assert_allclose(out[1], [[0.25, 1.25 / 3]])             # frames 0-2
    np.testing.assert_allclose(out[3], [[0.25, 0.25]])                 # frames 2-3
    assert temporal_mean(a, radius=0) == a
    # a macroblock sensitive on one frame in three is ranked below one sensitive on all three
    flicker = [np.array([[1.0, 0.6]]), np.array([[0.0, 0.6]]), np.array([[0.0, 0.6]])]
    assert levels_from_attribution(temporal_mean(flicker, 1)[1], (0.5,)).tolist() == [[0, 1]]


def test_neighbour_mean_never_uses_the_frame_itself():
    a = [np.array([[3.0, 1.0]]), np.array([[0.0, 10.0]]), np.array([[-5.0, 0.001]]), np.array([[2.0, 2.0]])]
    # shares: [.75 .25] | [0 1] | below min_total: [0 0] | [.5 .5]
    both = neighbour_mean(a, 1, 1, min_total=0.01)
    np.testing.assert_allclose(both[0], [[0.0, 1.0]])                  # frame 1 only
    np.testing.assert_allclose(both[1], [[0.375, 0.125]])              # frames 0 and 2
    np.testing.assert_allclose(both[2], [[0.25, 0.75]])                # frames 1 and 3
    before = neighbour_mean(a, 2, 0, min_total=0.01)
    np.testing.assert_allclose(before[0], [[0.5, 0.5]])                # no earlier frame: flat
    np.testing.assert_allclose(before[1], [[0.75, 0.25]])
    np.testing.assert_allclose(before[3], [[0.0, 0.5]])                # frames 1 and 2
    # a frame's own sensitivity never decides its map: change it, and its map stays
    changed = list(a)
    changed[1] = np.array([[9.0, 0.0]])
    np.testing.assert_allclose(neighbour_mean(changed, 1, 1)[1], neighbour_mean(a, 1, 1)[1])
    with pytest.raises(ValueError):
        neighbour_mean(a, 0, 0)


@pytest.fixture(scope="module")
def detector():
    import how2compress_ros.detectors.ssdlite_person as ssd
    try:
        return ssd.SSDLitePersonDetector(score_threshold=0.4)
    except FileNotFoundError as exc:
        pytest.skip(str(exc))


def test_differentiable_scores_match_the_detector(detector):
    from footage import frames

    rgb = frames("vtest.avi", 1)[0]
    _, plain = detector.raw_outputs(rgb)
    x = torch.from_numpy(rgb).float().requires_grad_(True)
    scores = detector.person_scores(x)
    assert np.abs(scores.detach().numpy() - plain).max() < 0.03
    scores.max().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_coding_the_emphasised_macroblocks_better_restores_the_detector_output(detector):
    """On a real frame coded at QP 40, coding the macroblocks the levels emphasise at QP 30
    undoes most of the detector's output change, and far more than as many random macroblocks.
    (Pasting raw pixels into the QP-40 frame does not: the seams change the output too.)"""
    from footage import frames
    from how2compress_ros.codec import mb_grid
    from how2compress_ros.emphasis.training import encode_decode

    (rgb,) = frames("vtest.avi", 1)
    grid = mb_grid(rgb.shape[1], rgb.shape[0])
    config = SensitivityConfig(low_qp=40, steps=2)
    (levels,) = sensitivity_levels(frame_attributions(detector, [rgb], config, progress=False), config)
    assert levels.shape == grid and 0.02 < (levels > 0).mean() < 0.8
    with torch.no_grad():
        ref = detector.person_scores(torch.from_numpy(rgb).float())

    def change_with_qp30_on(mask):
        coded, _ = encode_decode(rgb, mask.astype(np.int64), [40, 30])
        with torch.no_grad():
            return ((detector.person_scores(torch.from_numpy(coded).float()) - ref) ** 2).sum().item()

    before = change_with_qp30_on(np.zeros(grid, bool))
    emphasised = change_with_qp30_on(levels > 0)
    rng = np.random.default_rng(0)
    random = np.mean([change_with_qp30_on(rng.permutation((levels > 0).ravel()).reshape(grid)) for _ in range(3)])
    assert emphasised < 0.5 * before
    assert emphasised < 0.6 * random


class CountingDetector(OneMacroblockDetector):
    def __init__(self):
        self.calls = 0

    def person_scores(self, rgb):
        self.calls += 1
        return super().person_scores(rgb)


def test_training_attributions_are_cached_per_frames_and_settings(tmp_path):
    from how2compress_ros.emphasis.train_cli import cached_attributions

    rng = np.random.default_rng(1)
    rgbs = [rng.integers(0, 256, (48, 80, 3)).astype(np.uint8) for _ in range(2)]
    det = CountingDetector()
    first = cached_attributions(rgbs, det, SensitivityConfig(steps=2), str(tmp_path))
    assert det.calls > 0 and len(list(tmp_path.glob("sensitivity-*.npz"))) == 1
    det.calls = 0
    again = cached_attributions(rgbs, det, SensitivityConfig(steps=2), str(tmp_path))
    assert det.calls == 0                                   # read back, not recomputed
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    cached_attributions(rgbs, det, SensitivityConfig(steps=3), str(tmp_path))    # other settings
    rgbs[1] = rgbs[1][::-1].copy()
    cached_attributions(rgbs, det, SensitivityConfig(steps=2), str(tmp_path))    # other frames
    assert det.calls > 0 and len(list(tmp_path.glob("sensitivity-*.npz"))) == 3
