"""Split-able backbones (our 3D CNN and HF transformers' VideoMAE): edge part + server part ==
whole model at every offload point; FLOP counting picks offload points near 1/3 and 2/3;
save/load; resumable training."""
import pytest
import torch

from approxbit_ros.backbones.cnn3d import Cnn3dBackbone, Cnn3dConfig
from approxbit_ros.backbones.flops import count_flops, cumulative_block_flops, offload_points
from approxbit_ros.backbones.videomae import VideoMaeBackbone, small_videomae_config
from approxbit_ros.data.synthetic_actions import CLASSES


def clip_input(model, batch=1, frames=16, size=64):
    g = torch.Generator().manual_seed(1)
    return model.preprocess(torch.randint(0, 256, (batch, frames, size, size, 3), generator=g, dtype=torch.uint8))


@pytest.fixture(scope="module", params=["cnn3d", "videomae"])
def model(request):
    torch.manual_seed(0)
    if request.param == "cnn3d":
        return Cnn3dBackbone(Cnn3dConfig()).eval()
    return VideoMaeBackbone.from_config(small_videomae_config(len(CLASSES), CLASSES)).eval()


def test_edge_then_server_equals_the_whole_model(model):
    x = clip_input(model, batch=2)
    full = model(x)
    for o in range(model.num_blocks + 1):
        h = model.edge(x, o)
        assert h.shape[1] == model.feature_channels(o)
        torch.testing.assert_close(model.server(h, o), full, rtol=1e-4, atol=1e-5)


def test_videomae_split_equals_the_transformers_model():
    """The split reproduces VideoMAEForVideoClassification's own forward (no re-implementation drift)."""
    torch.manual_seed(0)
    bb = VideoMaeBackbone.from_config(small_videomae_config(len(CLASSES), CLASSES)).eval()
    x = clip_input(bb, batch=2)
    with torch.no_grad():
        reference = bb.model(pixel_values=x).logits
        for o in (0, 2, bb.num_blocks):
            h = bb.edge(x, o)
            assert h.shape == (2, 96, 4, 8, 8)      # tokens carried as the tubelet grid
            torch.testing.assert_close(bb.server(h, o), reference, rtol=1e-4, atol=1e-5)


def test_videomae_loads_a_transformers_snapshot_folder(tmp_path):
    """A folder written by transformers' own save_pretrained (the layout of a hub snapshot) loads
    through load_backbone, with its labels and its preprocessor's normalisation."""
    import json

    from transformers import VideoMAEForVideoClassification

    from approxbit_ros.configurations import load_backbone

    cfg = small_videomae_config(3, ["a", "b", "c"], size=32)
    cfg.num_hidden_layers = 2
    torch.manual_seed(0)
    hf = VideoMAEForVideoClassification(cfg).eval()
    hf.save_pretrained(str(tmp_path))
    with open(tmp_path / "preprocessor_config.json", "w") as f:
        json.dump({"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}, f)
    bb, kind, labels = load_backbone(str(tmp_path))
    assert kind == "videomae" and labels == ["a", "b", "c"] and bb.num_blocks == 2
    clip = torch.full((1, 16, 48, 48, 3), 255, dtype=torch.uint8)    # other size: resized to 32
    x = bb.preprocess(clip)
    assert x.shape == (1, 16, 3, 32, 32)
    torch.testing.assert_close(x, torch.ones_like(x))               # (1 - 0.5) / 0.5
    with torch.no_grad():
        torch.testing.assert_close(bb(x), hf(pixel_values=x).logits)


def test_flops_grow_along_the_network_and_offload_points_sit_near_thirds(model):
    cum = cumulative_block_flops(model, clip_input(model))
    assert cum == sorted(cum) and cum[0] > 0
    o1, o2 = offload_points(cum)
    assert 0 < o1 < o2 < model.num_blocks
    total = cum[-1]
    # the chosen points are the closest block boundaries to 1/3 and 2/3 of the FLOPs
    for o, f in ((o1, 1 / 3), (o2, 2 / 3)):
        assert all(abs(cum[o] / total - f) <= abs(cum[k] / total - f) + 1e-9
                   for k in range(1, model.num_blocks) if k not in (o1, o2) or k == o)


def test_count_flops_counts_a_known_matmul():
    a, b = torch.randn(8, 16), torch.randn(16, 4)
    assert count_flops(lambda: a @ b) == 2 * 8 * 16 * 4


def test_save_and_load(tmp_path, model):
    model.save_pretrained(str(tmp_path), extra={"note": "test"})
    loaded = type(model).from_pretrained(str(tmp_path))
    x = clip_input(model)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))


def test_training_runs_and_resumes(tmp_path):
    from approxbit_ros.training.backbone_training import BackboneTrainer, BackboneTrainingConfig

    cfg = BackboneTrainingConfig(epochs=2, clips_per_epoch=16, batch_size=8, val_clips=13)
    torch.manual_seed(0)
    t1 = BackboneTrainer(Cnn3dBackbone(Cnn3dConfig()), cfg)
    hist = t1.train(str(tmp_path), progress=False, stop_after=1)     # interrupted after epoch 1
    assert len(hist) == 1
    # the recorded validation accuracy is the trained model's on the 13 validation clips, counted here
    from approxbit_ros.data.synthetic_actions import SyntheticActions

    val = SyntheticActions("val", 13)
    t1.model.eval()
    with torch.no_grad():
        right = sum(int(t1.model(t1.model.preprocess(torch.from_numpy(c)[None])).argmax(1).item() == y)
                    for c, y in (val[i] for i in range(13)))
    assert hist[0]["val_top1"] == pytest.approx(right / 13)
    t2 = BackboneTrainer(Cnn3dBackbone(Cnn3dConfig()), cfg)
    t2.load_checkpoint(str(tmp_path))
    assert t2.epoch == 1
    for a, b in zip(t1.model.state_dict().values(), t2.model.state_dict().values()):
        torch.testing.assert_close(a, b)
    assert len(t2.train(progress=False)) == 2


def test_edge_encoders_cost_at_most_two_percent_of_the_backbone(model):
    from approxbit_ros.codec import BinaryCodecConfig, BinaryEncoder

    x = clip_input(model)
    total = count_flops(lambda: model(x))
    cum = cumulative_block_flops(model, x)
    for o in offload_points(cum):
        feats = model.edge(x, o)
        d = model.feature_channels(o)
        # the dense spatial encoder is what the ViT's configurations use (its token grid is small)
        mixings = ("depthwise", "dense") if isinstance(model, VideoMaeBackbone) else ("depthwise",)
        for spatial, mixing in [(False, "depthwise")] + [(True, m) for m in mixings]:
            for k in (d // 2, d // 4):
                enc = BinaryEncoder(BinaryCodecConfig(d, k, spatial, spatial_mixing=mixing)).eval()
                assert count_flops(lambda: enc.encode_bits(feats)) <= 0.02 * total, (o, mixing, k)
