"""Pseudo-RoI pretraining of the EA model: augmentation keeps image and RoI aligned, and a short
run teaches a fresh model to put the top level on the RoI."""
import numpy as np
import pytest
import torch

from how2compress_ros.emphasis.model import EmphasisModel, EmphasisModelConfig
from how2compress_ros.emphasis.pretraining import PretrainConfig, EmphasisPretrainer, augment, balanced_ce


def bright_square_frame(rng, rows=6, cols=8):
    """Dark noise with one bright 2x2-macroblock square (the 'object'); RoI = the square."""
    img = rng.integers(0, 40, (rows * 16, cols * 16, 3), dtype=np.uint8)
    r, c = rng.integers(0, rows - 1), rng.integers(0, cols - 1)
    img[r * 16:(r + 2) * 16, c * 16:(c + 2) * 16] = 230
    roi = np.zeros((rows, cols), bool)
    roi[r:r + 2, c:c + 2] = True
    return img, roi


def test_augment_keeps_the_roi_on_the_object():
    rng = np.random.default_rng(1)
    img, roi = bright_square_frame(rng)
    for scale in (1.0, 0.5):
        for _ in range(5):
            a_img, a_roi = augment(img, roi, scale, (4, 5), rng)
            assert a_img.shape[:2] == (a_roi.shape[0] * 16, a_roi.shape[1] * 16)
            assert a_roi.shape[0] <= 4 and a_roi.shape[1] <= 5
            luma = a_img.astype(float).mean(2).reshape(a_roi.shape[0], 16, a_roi.shape[1], 16).mean((1, 3))
            if a_roi.any() and (~a_roi).any():      # the RoI is where the bright macroblocks are
                assert luma[a_roi].min() > luma[~a_roi].max()


def test_balanced_ce_weighs_roi_and_background_equally():
    logits = torch.zeros(1, 5, 2, 10)
    logits[:, 0] = 5.0                              # predicts level 0 everywhere
    roi = torch.zeros(1, 2, 10, dtype=torch.bool)
    roi[0, 0, 0] = True                             # 1 of 20 macroblocks is RoI, and it is wrong
    plain = torch.nn.functional.cross_entropy(logits, roi.long() * 4)
    assert balanced_ce(logits, roi) > 5 * plain


@pytest.mark.parametrize("target", ["roi", "levels"])
def test_pretraining_learns_to_emphasise_the_target(target):
    """An RoI mask is learned as the top level; a level map (here level 2 on the object) as is."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    frames = [bright_square_frame(rng) for _ in range(16)]
    if target == "levels":
        frames = [(img, roi.astype(np.int64) * 2) for img, roi in frames]
    model = EmphasisModel(EmphasisModelConfig(downsample=1, width_multiplier=0.5))
    history = EmphasisPretrainer(model, frames, PretrainConfig(epochs=8, batch_size=8, crop=(6, 8),
                                                          scale=(1.0, 1.0))).train(progress=False)
    assert history[-1]["loss"] < history[0]["loss"]
    assert history[-1]["target_emphasised"] > history[0]["target_emphasised"]
    img, roi = bright_square_frame(np.random.default_rng(99))
    levels = model.predict_levels(img)
    if target == "roi":
        assert levels[roi].mean() > levels[~roi].mean() + 2
    else:
        assert np.abs(levels[roi] - 2).mean() < 0.6 and levels[~roi].mean() < 0.5


def test_augment_keeps_a_level_map_integer():
    rng = np.random.default_rng(3)
    img, roi = bright_square_frame(rng)
    levels = roi.astype(np.int64) * 3
    a_img, a_levels = augment(img, levels, 1.0, (6, 8), rng)
    assert a_levels.dtype == np.int64 and set(np.unique(a_levels)) <= {0, 3}
    assert (a_levels == 3).sum() == 4
