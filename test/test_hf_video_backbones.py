"""Every Hugging Face video classifier we split (VideoMAE, TimeSformer, ViViT), as a user's local
snapshot folder: a tiny random model written by the test with ``save_pretrained`` (plus a
``preprocessor_config.json``) loads through ``load_backbone``; at every offload point the edge
half + server half equals the transformers model's own logits; the feature map is (D, T, H, W)
(TimeSformer and ViViT carry [CLS] as an extra leading slice); FLOP counting picks two offload
points; a configuration's codec runs on the map."""
import json

import pytest
import torch

from approxbit_ros.backbones.hf_video import (TimesformerBackbone, VivitBackbone, small_timesformer_config,
                                              small_vivit_config)
from approxbit_ros.backbones.videomae import VideoMaeBackbone, small_videomae_config
from approxbit_ros.configurations import load_backbone

LABELS = ["wave", "walk", "sit", "jump", "run"]
MEAN, STD = [0.45, 0.45, 0.45], [0.225, 0.225, 0.225]          # Kinetics snapshots' values


def tiny(kind):
    if kind == "videomae":
        cfg = small_videomae_config(len(LABELS), LABELS, frames=8, size=32)
        return VideoMaeBackbone.from_config(cfg), 8
    if kind == "timesformer":
        cfg = small_timesformer_config(len(LABELS), LABELS, frames=4, size=32)
        return TimesformerBackbone.from_config(cfg), 4
    cfg = small_vivit_config(len(LABELS), LABELS, frames=8, size=32)
    return VivitBackbone.from_config(cfg), 8


@pytest.fixture(scope="module", params=["videomae", "timesformer", "vivit"])
def snapshot(request, tmp_path_factory):
    torch.manual_seed(0)
    model, frames = tiny(request.param)
    folder = tmp_path_factory.mktemp(request.param)
    model.model.save_pretrained(str(folder), safe_serialization=True)
    (folder / "preprocessor_config.json").write_text(json.dumps({"image_mean": MEAN, "image_std": STD}))
    return request.param, str(folder), frames


def clip(frames, batch=2, h=40, w=52):
    g = torch.Generator().manual_seed(3)
    return torch.randint(0, 256, (batch, frames, h, w, 3), generator=g, dtype=torch.uint8)


def test_split_equals_the_models_own_forward_at_every_offload_point(snapshot):
    kind, folder, frames = snapshot
    bb, name, labels = load_backbone(folder)
    assert name == kind and labels == LABELS
    assert bb.mean.flatten().tolist() == pytest.approx(MEAN) and bb.std.flatten().tolist() == pytest.approx(STD)
    x = bb.preprocess(clip(frames))
    assert x.shape[-2:] == (32, 32)                               # resized to the snapshot's image size
    with torch.no_grad():
        ref = bb.model(pixel_values=x).logits
        maps = []
        for o in range(bb.num_blocks + 1):
            h = bb.edge(x, o)
            assert h.ndim == 5 and h.shape[1] == bb.feature_channels(o)
            maps.append(h)
            torch.testing.assert_close(bb.server(h, o), ref, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(bb.server(bb.run_blocks(maps[1], 1, 3), 3), ref, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(bb(x), ref, rtol=1e-4, atol=1e-5)
    # the map holds the tokens, not a copy of the logits: different clips, different maps
    assert not torch.allclose(maps[2][0], maps[2][1])


def test_offload_points_and_a_codec_on_the_map(snapshot):
    from approxbit_ros.training.codec_training import ApproxBitConfiguration
    from approxbit_ros.backbones.flops import cumulative_block_flops, offload_points

    kind, folder, frames = snapshot
    bb = load_backbone(folder)[0]
    x = bb.preprocess(clip(frames, batch=1))
    cum = cumulative_block_flops(bb, x)
    assert all(a < b for a, b in zip(cum[:-2], cum[1:-1]))        # every layer costs FLOPs
    points = offload_points(cum)
    assert len(set(points)) == 2 and all(0 < o < bb.num_blocks for o in points)
    cfg = ApproxBitConfiguration(bb, points[0], 16, True, position_mean=False)
    with torch.no_grad():
        feats = bb.edge(x, points[0])
        codes = cfg.encoder.encode(feats)
        assert set(codes.unique().tolist()) <= {0.0, 1.0} and codes.shape[1] == 16
        assert cfg.decoder(codes.float(), tuple(feats.shape[2:])).shape == feats.shape
        assert cfg.predict(x).shape == (1, len(LABELS))


def test_a_snapshot_whose_weights_do_not_fit_its_config_is_refused(snapshot, tmp_path):
    kind, folder, _ = snapshot
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(folder, bad)
    cfg = json.loads((bad / "config.json").read_text())
    cfg["num_hidden_layers"] = 40
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="do not belong together|not a loadable"):
        load_backbone(str(bad))


def test_the_map_is_laid_out_as_time_height_width(snapshot):
    """At offload point 0 (embeddings only, no attention yet) a change in the last frame's top-left
    corner changes exactly one position of the map: the last time slot, row 0, column 0. A wrong
    token order would put it elsewhere, and the codec's convolutions would see scrambled
    neighbourhoods."""
    kind, folder, frames = snapshot
    bb = load_backbone(folder)[0]
    a = clip(frames, batch=1, h=32, w=32)
    b = a.clone()
    b[0, -1, :4, :4] = 255 - b[0, -1, :4, :4]
    with torch.no_grad():
        diff = (bb.edge(bb.preprocess(a), 0) - bb.edge(bb.preprocess(b), 0)).abs().amax(1)[0]   # (T, H, W)
    changed = (diff > 1e-6).nonzero().tolist()
    assert changed == [[diff.shape[0] - 1, 0, 0]], (kind, changed)
