"""The EA model on the detector's own trunk, its importance output, the "do no harm" rule and
its sensitivity training (issue 29)."""
import numpy as np
import pytest
import torch

from how2compress_ros.emphasis.model import (EmphasisModel, EmphasisModelConfig, do_no_harm, images_to_tensor,
                                             levels_from_importance, output_to_levels)
from how2compress_ros.emphasis.sensitivity_training import (ImportanceTrainConfig, ImportanceTrainer, captured_share,
                                                            importance_kl, share_targets)

SSD = dict(backbone="ssdlite-mobilenetv2", output="importance")


@pytest.fixture(scope="module")
def trunk_model():
    torch.manual_seed(0)
    return EmphasisModel.from_detector_graph(EmphasisModelConfig(**SSD)).eval()


def test_trunk_is_the_detectors_own_mobilenetv2_up_to_stride_16():
    from how2compress_ros.detectors.ssdlite_person import SSDLitePersonDetector
    from how2compress_ros.emphasis.ssdlite_trunk import PREFIX, SsdliteTrunk

    det = SSDLitePersonDetector()
    trunk = SsdliteTrunk.from_graph().eval()
    x = torch.rand(1, 96, 160, 3) * 2 - 1          # NHWC in [-1, 1], as the graph's feed
    names = [PREFIX + "expanded_conv_5/output", PREFIX + "expanded_conv_12/output"]
    want8, want16 = det.runner.run(det.runner.plan(names, ["Preprocessor/sub"]), names, {"Preprocessor/sub": x})
    with torch.no_grad():
        got8, got16 = trunk(x.permute(0, 3, 1, 2))
    assert got8.shape == (1, 32, 12, 20) and got16.shape == (1, 96, 6, 10)
    torch.testing.assert_close(got8, want8.permute(0, 3, 1, 2), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(got16, want16.permute(0, 3, 1, 2), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("downsample", [1, 2, 4])
def test_importance_output_covers_the_macroblock_grid(trunk_model, downsample):
    model = EmphasisModel(EmphasisModelConfig(**SSD, downsample=downsample)).eval()
    out = model(torch.rand(2, 3, 100, 170))
    assert out.shape == (2, 1, 7, 11)


def test_frozen_trunk_gets_no_gradient_and_the_head_does():
    model = EmphasisModel(EmphasisModelConfig(**SSD))
    model(torch.rand(1, 3, 64, 96)).sum().backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    assert all(p.grad is not None for p in model.head.parameters())
    tuned = EmphasisModel(EmphasisModelConfig(**SSD, trunk_trainable=True))
    tuned(torch.rand(1, 3, 64, 96)).sum().backward()
    assert all(p.grad is not None for p in tuned.backbone.parameters())


def test_levels_by_cumulative_share_of_the_predicted_importance():
    scores = np.full((4, 5), -20.0)
    scores[0, 0], scores[1, 1], scores[2, 2] = np.log(0.6), np.log(0.3), np.log(0.1 - 17 * np.exp(-20))
    levels = levels_from_importance(scores, (0.5, 0.7, 0.85, 0.95))
    # 0.6 alone holds 50 %: level 4; 0.3 is needed to reach 70 %: level 3; 0.1 to reach 95 %: level 1
    assert levels[0, 0] == 4 and levels[1, 1] == 3 and levels[2, 2] == 1
    assert np.count_nonzero(levels) == 3


def test_do_no_harm_codes_a_frame_uniformly_when_nearly_all_of_it_is_emphasised():
    sparse = np.zeros((4, 5), np.uint8)
    sparse[0, :3] = 4
    assert (do_no_harm(sparse, 0.8, 4) == sparse).all()
    dense = np.full((4, 5), 3, np.uint8)
    dense[0, :3] = 0                                  # 17 of 20 emphasised = 85 %
    assert (do_no_harm(dense, 0.8, 4) == 4).all()
    assert (do_no_harm(dense, 0.9, 4) == dense).all()
    assert (do_no_harm(dense, 1.0, 4) == dense).all()     # 1 = off
    cfg = EmphasisModelConfig(**SSD, uniform_above=0.5)
    flat = np.zeros((1, 4, 5))                        # flat importance: emphasis everywhere
    assert (output_to_levels(flat, cfg) == 4).all()


def test_save_load_and_onnx_give_the_same_levels(trunk_model, tmp_path):
    from how2compress_ros.emphasis.onnx_model import OnnxEmphasisModel

    with torch.no_grad():
        for p in trunk_model.head.parameters():      # a head that is not all but zero
            p.add_(torch.randn_like(p) * 0.05)
    rgb = np.random.default_rng(0).integers(0, 256, (72, 120, 3), dtype=np.uint8)
    want = trunk_model.predict_levels(rgb)
    assert want.shape == (5, 8) and len(np.unique(want)) > 1
    trunk_model.save_pretrained(str(tmp_path / "m"))
    loaded = EmphasisModel.from_pretrained(str(tmp_path / "m"))
    assert loaded.config.shares == trunk_model.config.shares and loaded.config.backbone == "ssdlite-mobilenetv2"
    assert (loaded.predict_levels(rgb) == want).all()
    assert (OnnxEmphasisModel(loaded).predict_levels(rgb) == want).all()


def test_bad_importance_configs_are_refused():
    with pytest.raises(ValueError, match="backbone"):
        EmphasisModelConfig(backbone="resnet").validate()
    with pytest.raises(ValueError, match="shares"):
        EmphasisModelConfig(**SSD, shares=(0.5, 0.7)).validate()
    with pytest.raises(ValueError, match="shares must increase"):
        EmphasisModelConfig(**SSD, shares=(0.5, 0.4, 0.85, 0.95)).validate()
    with pytest.raises(ValueError, match="uniform_above"):
        EmphasisModelConfig(**SSD, uniform_above=0.0).validate()


def test_kl_is_zero_for_the_target_itself_and_ignores_frames_without_one():
    target = torch.tensor([[[0.5, 0.25], [0.25, 0.0]], [[0.0, 0.0], [0.0, 0.0]]])
    exact = torch.log(target.clamp_min(1e-9)) + 3.0            # softmax is shift-invariant
    assert importance_kl(exact, target).item() == pytest.approx(0.0, abs=1e-6)
    assert importance_kl(torch.zeros(2, 2, 2), target).item() > 0.05
    # the frame without a target neither adds nor dilutes
    assert importance_kl(torch.zeros(2, 2, 2), target).item() == pytest.approx(
        importance_kl(torch.zeros(1, 2, 2), target[:1]).item())


def test_captured_share_is_the_share_for_a_perfect_model_and_low_for_a_reversed_one():
    t = np.array([0.5, 0.3, 0.1, 0.05, 0.05] + [0.0] * 15)
    assert captured_share(t, t, 0.9) == pytest.approx(0.9)
    assert captured_share(-t, t, 0.9) < 0.2
    assert np.isnan(captured_share(t, np.zeros(20)))


def test_share_targets_normalise_and_average():
    a = [np.array([[2.0, -1.0], [2.0, 0.0]]), np.array([[0.0, 0.0], [0.0, 4.0]])]
    plain = share_targets(a)
    assert np.allclose(plain[0], [[0.5, 0], [0.5, 0]]) and np.allclose(plain[1], [[0, 0], [0, 1]])
    assert np.allclose(share_targets(a, radius=1)[0], [[0.25, 0], [0.25, 0.5]])


def _bright_square_frames(n, rng):
    """Frames with a bright square somewhere; its macroblocks hold all the 'sensitivity'."""
    frames, targets = [], []
    for _ in range(n):
        rgb = rng.integers(0, 60, (96, 128, 3), dtype=np.uint8)
        r, c = rng.integers(0, 5), rng.integers(0, 7)
        rgb[r * 16:(r + 2) * 16, c * 16:(c + 2) * 16] = 230
        t = np.zeros((6, 8), np.float32)
        t[r:r + 2, c:c + 2] = 0.25
        frames.append(rgb)
        targets.append(t)
    return frames, targets


def test_importance_training_learns_where_the_target_lies_and_resumes(tmp_path):
    rng = np.random.default_rng(0)
    frames, targets = _bright_square_frames(24, rng)
    vf, vt = _bright_square_frames(8, rng)
    torch.manual_seed(0)
    model = EmphasisModel.from_detector_graph(EmphasisModelConfig(**SSD, head_channels=16))
    cfg = ImportanceTrainConfig(epochs=6, lr=5e-3, batch_size=8)
    trainer = ImportanceTrainer(model, frames, targets, vf, vt, cfg)
    before = trainer.evaluate()
    history = trainer.train(checkpoint_dir=str(tmp_path), progress=False)
    after = trainer.evaluate()
    assert len(history) == 6 and 1 <= trainer.best_epoch <= 6
    assert after["val_kl"] < before["val_kl"] - 0.3
    assert after["val_captured_90"] > 0.7 > before["val_captured_90"]       # 4 of 48 MBs: random ~0.08
    # a finished run resumes as finished, with its history and its chosen epoch
    again = ImportanceTrainer(EmphasisModel.from_detector_graph(EmphasisModelConfig(**SSD, head_channels=16)),
                              frames, targets, vf, vt, cfg)
    assert again.train(checkpoint_dir=str(tmp_path), progress=False) == history
    assert again.best_epoch == trainer.best_epoch
    with pytest.raises(ValueError, match="other settings"):
        ImportanceTrainer(model, frames, targets, vf, vt, ImportanceTrainConfig(epochs=7)).train(str(tmp_path))


def test_calibrated_shares_emphasise_as_many_macroblocks_as_the_targets():
    from how2compress_ros.emphasis.sensitivity_training import calibrate_shares, emphasised_fraction

    rng = np.random.default_rng(1)
    targets, predicted = [], []
    for _ in range(20):
        order = rng.permutation(100)
        t = np.zeros(100)
        t[order[:3]] = [0.6, 0.3, 0.1]                    # sharp: 3 macroblocks hold everything
        p = np.full(100, 0.2 / 90)
        p[order[:10]] = 0.08                              # smooth: the same ones among 10 likely ones
        targets.append(t.reshape(10, 10))
        predicted.append(p.reshape(10, 10))
    assert emphasised_fraction(targets[0], 0.5) == 0.01 and emphasised_fraction(predicted[0], 0.5) == 0.07
    shares, fractions = calibrate_shares(predicted, targets, (0.5, 0.85, 0.95))
    assert fractions == pytest.approx([0.01, 0.02, 0.03])
    assert all(a < b for a, b in zip(shares, shares[1:])) and shares[-1] < 0.95
    for share, want in zip(shares, fractions):
        assert np.mean([emphasised_fraction(p, share) for p in predicted]) == pytest.approx(want)
    with pytest.raises(ValueError, match="no validation frames"):
        calibrate_shares(predicted, [np.zeros((10, 10))] * 20, (0.5,))


def test_h2c_train_sensitivity_trains_calibrates_and_saves_a_loadable_model(tmp_path, capsys):
    import json

    from footage import footage
    from how2compress_ros.emphasis.sensitivity_train_cli import main

    video = footage("carphone_pristine.mp4")
    out, ckpt = tmp_path / "ea", tmp_path / "ckpt"
    argv = ["--video", video, "--frames", "0:10:1", "--out", str(out), "--checkpoint-dir", str(ckpt),
            "--epochs", "2", "--val-fraction", "0.3", "--head-channels", "8", "--threads", "1"]
    assert main(argv) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["backbone"] == "ssdlite-mobilenetv2" and cfg["output"] == "importance"
    assert cfg["training_frames"] == 7 and cfg["validation_frames"] == 3 and len(cfg["history"]) == 2
    assert cfg["calibration"]["target_shares"] == [0.5, 0.7, 0.85, 0.95]
    assert cfg["shares"] == cfg["calibration"]["shares"]
    assert [p.name[:12] for p in (ckpt / "sensitivity").iterdir()] == ["sensitivity-"]   # the cache
    model = EmphasisModel.from_pretrained(str(out))
    assert model.predict_levels(np.zeros((144, 176, 3), np.uint8)).shape == (9, 11)
    # "do no harm" set just above what the saved model's maps emphasise on the validation frames
    from how2compress_ros.emphasis.train_cli import read_frames

    limit = cfg["uniform_above"]
    model.config.uniform_above = 1.0
    emphasised = [float(np.mean(model.predict_levels(f) > 0)) for f in read_frames(video, 7, 10, 1)]
    assert cfg["calibration"]["validation_max_emphasised"] == pytest.approx(max(emphasised), abs=1e-3)
    assert limit == cfg["calibration"]["uniform_above"] and max(emphasised) < limit <= min(1.0, max(emphasised) + 0.011)
    printed = capsys.readouterr().out
    assert "shares calibrated on the validation frames" in printed and "do no harm" in printed
    assert main(["--video", video, "--frames", "0:10:1", "--out", str(tmp_path / "ea2"), "--epochs", "1",
                 "--head-channels", "8", "--uniform-above", "0.9", "--threads", "1"]) == 0
    assert json.loads((tmp_path / "ea2" / "config.json").read_text())["uniform_above"] == 0.9
    # bad options: one line, exit 2, nothing trained
    assert main(["--video", video, "--out", str(tmp_path / "x"), "--shares", "0.7,0.5,0.9,0.95"]) == 2
    assert "--shares must increase" in capsys.readouterr().err
    assert main(["--video", video, "--out", str(tmp_path / "x"), "--uniform-above", "lots"]) == 2
    assert "--uniform-above must be a fraction in (0, 1] or auto" in capsys.readouterr().err
    assert main(["--video", str(tmp_path / "none.mp4"), "--out", str(tmp_path / "x")]) == 2
    assert "no such video" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_a_trainable_trunk_scores_each_frame_as_it_is_paired_with_its_target():
    # frames and their mirror images are separate examples with mirrored targets; scoring must
    # not mirror a frame again on its own (its target would no longer match), in training or in
    # validation
    rng = np.random.default_rng(2)
    frames, targets = _bright_square_frames(4, rng)
    model = EmphasisModel.from_detector_graph(EmphasisModelConfig(**SSD, head_channels=8, trunk_trainable=True))
    trainer = ImportanceTrainer(model, frames, targets, frames, targets, ImportanceTrainConfig(epochs=1))
    model.eval()
    with torch.no_grad():
        for x, _ in trainer.train_set + trainer.val_set:
            torch.testing.assert_close(trainer._scores([x]), model(images_to_tensor([x])))
    assert trainer.evaluate() == trainer.evaluate()


def test_the_do_no_harm_limit_sits_just_above_every_validation_map():
    from how2compress_ros.emphasis.sensitivity_training import emphasis_limit

    assert emphasis_limit([0.2, 0.446, 0.31]) == 0.45
    assert emphasis_limit([0.45]) == 0.46                  # a map at exactly 0.45 stays below the limit
    assert emphasis_limit([]) == 1.0 and emphasis_limit([0.995]) == 1.0 and emphasis_limit([1.0]) == 1.0
