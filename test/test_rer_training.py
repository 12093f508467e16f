"""Region-aware Emphasis Routing: per-macroblock SSIM, proxy thresholds, dual exploration,
detector feedback, and a short resumable training run on real footage."""
import numpy as np
import pytest
import torch

from footage import frames
from how2compress_ros.detectors.base import Box
from how2compress_ros.emphasis.proxy import (dual_exploration, macroblock_ssim, proxy_emphasis_thresholds,
                                             raise_missed_objects, roi_mask)


def test_macroblock_ssim_is_one_for_identical_and_lower_where_damaged():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    assert macroblock_ssim(img, img).shape == (3, 4)
    np.testing.assert_allclose(macroblock_ssim(img, img), 1.0)
    damaged = img.copy()
    damaged[:16, :16] = 128
    s = macroblock_ssim(img, damaged)
    assert s[0, 0] < 0.2 and s[2, 3] > 0.99


def test_thresholds_are_percentiles():
    maps = [np.arange(50).reshape(5, 10) / 100, np.arange(50, 100).reshape(5, 10) / 100]
    roi, bg = proxy_emphasis_thresholds(maps, 90, 50)
    assert roi == pytest.approx(np.percentile(np.arange(100) / 100, 90))
    assert bg == pytest.approx(0.495)


def test_roi_mask_covers_the_boxes():
    m = roi_mask([Box(20, 5, 40, 20, 0.9)], (3, 4))
    assert m.tolist() == [[False, True, True, False], [False, True, True, False], [False, False, False, False]]


def test_dual_exploration_moves_roi_up_and_background_down():
    rng = np.random.default_rng(0)
    em = np.full((6, 6), 2)
    proxy = np.full((6, 6), 3)
    roi = np.zeros((6, 6), bool)
    roi[:3] = True
    ssim = np.tile(np.linspace(0.1, 0.99, 6), (6, 1))      # columns: sensitive -> resilient
    new = dual_exploration(em, proxy, roi, ssim, tau_roi=0.8, tau_bg=0.5, p=1.0, levels=5, rng=rng)
    sensitive_roi = roi & (ssim <= 0.8)
    assert (new[sensitive_roi] >= 2).all() and (new[sensitive_roi] > 2).any()
    assert (new[roi & (ssim > 0.8)] == 3).all()            # saturated RoI keeps its proxy
    resilient_bg = ~roi & (ssim >= 0.5)
    assert (new[resilient_bg] <= 2).all() and (new[resilient_bg] < 2).any()
    assert (new[~roi & (ssim < 0.5)] == 2).all()           # other background: proxy - 1
    quiet = dual_exploration(em, proxy, roi, ssim, 0.8, 0.5, p=0.0, levels=5, rng=rng)
    assert (quiet[roi] == 3).all() and (quiet[~roi] == 2).all()


def test_missed_objects_get_more_emphasis():
    proxy = np.zeros((3, 4), np.int64)
    proxy[0, 0] = 4
    out = raise_missed_objects(proxy, [Box(0, 0, 20, 10, 0.9)], levels=5)
    assert out[0, 0] == 4 and out[0, 1] == 1 and out[1:].sum() == 0


def test_short_training_run_learns_and_resumes(tmp_path):
    import how2compress_ros.detectors.ssdlite_person as ssd
    from how2compress_ros.emphasis.model import EmphasisModel, EmphasisModelConfig
    from how2compress_ros.emphasis.training import RERConfig, RERTrainer, prepare_frames

    det = ssd.SSDLitePersonDetector()
    tf = prepare_frames(frames("carphone_pristine.mp4", 8)[::2], det, progress=False)
    assert all(f.roi.any() for f in tf)

    def trainer(epochs):
        torch.manual_seed(0)
        return RERTrainer(EmphasisModel(EmphasisModelConfig(downsample=2)), det, tf,
                          RERConfig(epochs=epochs, batch_size=2, seed=3))

    t1 = trainer(1)
    hist = t1.train(checkpoint_dir=str(tmp_path), progress=False)
    assert len(hist) == 1 and np.isfinite(hist[0].loss) and 0.0 <= hist[0].f1 <= 1.0
    assert all(f.proxy is not None and f.proxy.shape == f.roi.shape for f in tf)
    saved_proxy = [f.proxy.copy() for f in tf]
    for f in tf:
        f.proxy = None
    t2 = trainer(2)                     # resumes at epoch 1 from the checkpoint
    t2.load_checkpoint(str(tmp_path))
    assert t2.epoch == 1 and len(t2.history) == 1
    for f, p in zip(tf, saved_proxy):
        np.testing.assert_array_equal(f.proxy, p)
    for a, b in zip(t1.model.state_dict().values(), t2.model.state_dict().values()):
        torch.testing.assert_close(a, b)
    hist2 = t2.train(progress=False)
    assert [h.epoch for h in hist2] == [1, 2]
    # it learns: the resumed second epoch's loss is well below the first's (8.7 -> 6.9 measured)
    assert hist2[-1].loss < 0.9 * hist[0].loss and hist2[-1].align_loss < hist[0].align_loss


    # fine-tuning a pretrained model: BatchNorm statistics stay as they were, weights move
    torch.manual_seed(0)
    t3 = RERTrainer(EmphasisModel(EmphasisModelConfig(downsample=2)), det, tf,
                    RERConfig(epochs=1, batch_size=2, seed=3, freeze_batchnorm=True))
    before = {k: v.clone() for k, v in t3.model.state_dict().items()}
    t3.train(progress=False)
    after = t3.model.state_dict()
    stats = [k for k in before if k.endswith(("running_mean", "running_var"))]
    assert stats and all(torch.equal(before[k], after[k]) for k in stats)
    assert not torch.equal(before["head.weight"], after["head.weight"])


def test_dilate_mask_grows_by_whole_macroblocks():
    from how2compress_ros.emphasis.proxy import dilate_mask

    m = np.zeros((5, 5), bool)
    m[2, 2] = True
    assert dilate_mask(m, 1).sum() == 5 and dilate_mask(m, 2).sum() == 13
    assert (dilate_mask(m, 0) == m).all()


def test_frames_of_several_sizes_train_in_same_size_batches():
    """Footage of several videos (h2c_train --video a --video b): every frame once per epoch,
    never two sizes in one batch."""
    from how2compress_ros.emphasis.model import EmphasisModel, EmphasisModelConfig
    from how2compress_ros.emphasis.training import RERConfig, RERTrainer, TrainingFrame

    def frame(h, w):
        grid = (h // 16, w // 16)
        return TrainingFrame(np.zeros((h, w, 3), np.uint8), [], np.zeros(grid, bool),
                             np.linspace(0.2, 0.9, grid[0] * grid[1]).reshape(grid))
    tf = [frame(64, 96) for _ in range(5)] + [frame(48, 48) for _ in range(4)]
    t = RERTrainer(EmphasisModel(EmphasisModelConfig(downsample=2)), None, tf, RERConfig(epochs=3, batch_size=2))
    assert t.sched.T_max == 3 * (3 + 2)
    for _ in range(3):
        batches = t._batches(2)
        assert sorted(i for b in batches for i in b) == list(range(9))
        assert all(len({tf[i].rgb.shape for i in b}) == 1 for b in batches)
