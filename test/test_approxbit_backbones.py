"""Split-able backbones: edge part + server part == whole model at every offload point; FLOP
counting picks offload points near 1/3 and 2/3; save/load; resumable training."""
import pytest
import torch

from approxbit_ros.backbones.cnn3d import Cnn3dBackbone, Cnn3dConfig
from approxbit_ros.backbones.flops import count_flops, cumulative_block_flops, offload_points


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return Cnn3dBackbone(Cnn3dConfig()).eval()


def test_edge_then_server_equals_the_whole_model(model):
    x = torch.randn(2, 3, 16, 64, 64)
    full = model(x)
    for o in range(model.num_blocks + 1):
        h = model.edge(x, o)
        assert h.shape[1] == model.feature_channels(o)
        torch.testing.assert_close(model.server(h, o), full, rtol=1e-4, atol=1e-5)


def test_flops_grow_along_the_network_and_offload_points_sit_near_thirds(model):
    cum = cumulative_block_flops(model, torch.zeros(1, 3, 16, 64, 64))
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
    loaded = Cnn3dBackbone.from_pretrained(str(tmp_path))
    x = torch.randn(1, 3, 16, 64, 64)
    torch.testing.assert_close(loaded(x), model(x))


def test_training_runs_and_resumes(tmp_path):
    from approxbit_ros.training.backbone_training import BackboneTrainer, BackboneTrainingConfig

    cfg = BackboneTrainingConfig(epochs=2, clips_per_epoch=16, batch_size=8, val_clips=13)
    torch.manual_seed(0)
    t1 = BackboneTrainer(Cnn3dBackbone(Cnn3dConfig()), cfg)
    hist = t1.train(str(tmp_path), progress=False, stop_after=1)     # interrupted after epoch 1
    assert len(hist) == 1 and 0 <= hist[0]["val_top1"] <= 1
    t2 = BackboneTrainer(Cnn3dBackbone(Cnn3dConfig()), cfg)
    t2.load_checkpoint(str(tmp_path))
    assert t2.epoch == 1
    for a, b in zip(t1.model.state_dict().values(), t2.model.state_dict().values()):
        torch.testing.assert_close(a, b)
    assert len(t2.train(progress=False)) == 2


def test_edge_encoders_cost_at_most_two_percent_of_the_backbone(model):
    from approxbit_ros.codec import BinaryCodecConfig, BinaryEncoder

    x = torch.zeros(1, 3, 16, 64, 64)
    total = count_flops(lambda: model(x))
    cum = cumulative_block_flops(model, x)
    for o in offload_points(cum):
        feats = model.edge(x, o)
        d = model.feature_channels(o)
        for spatial in (False, True):
            for k in (d // 2, d // 4):
                enc = BinaryEncoder(BinaryCodecConfig(d, k, spatial)).eval()
                assert count_flops(lambda: enc.encode_bits(feats)) <= 0.02 * total
