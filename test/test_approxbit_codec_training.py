"""One ApproxBit configuration around a frozen backbone: the backbone stays untouched, the
deployed path (hard bits through the wire format) matches training-time binarisation, and
training resumes from its checkpoint."""
import numpy as np
import pytest
import torch

from approxbit_ros.backbones.cnn3d import Cnn3dBackbone, Cnn3dConfig
from approxbit_ros.codec import BinaryPayload
from approxbit_ros.training.codec_training import (ApproxBitConfiguration, CodecTrainingConfig, learning_rate,
                                                   save_configuration, train_configuration)


def test_configuration_trains_without_touching_the_backbone(tmp_path):
    torch.manual_seed(0)
    backbone = Cnn3dBackbone(Cnn3dConfig()).eval()
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    model = ApproxBitConfiguration(backbone, offload_point=2, codebook_size=4, spatial_encoder=True)
    cfg = CodecTrainingConfig(offload_point=2, codebook_size=4, spatial_encoder=True, epochs=1,
                              clips_per_epoch=16, batch_size=8, val_clips=13)
    ckpt = str(tmp_path / "ckpt.pt")
    hist = train_configuration(model, cfg, checkpoint=ckpt, progress=False)
    assert len(hist) == 1 and np.isfinite(hist[0]["task"]) and hist[0]["recon"] >= 0
    for k, v in backbone.state_dict().items():
        torch.testing.assert_close(v, before[k])
    # resuming a finished run trains nothing more and keeps the weights
    enc_state = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    assert len(train_configuration(model, cfg, checkpoint=ckpt, progress=False)) == 1
    for k, v in model.encoder.state_dict().items():
        torch.testing.assert_close(v, enc_state[k])
    path = save_configuration(model, cfg, str(tmp_path / "cfgs"))
    assert path.endswith("o2_enc_k4.safetensors")


def test_deployed_path_equals_wire_round_trip():
    torch.manual_seed(1)
    backbone = Cnn3dBackbone(Cnn3dConfig()).eval()
    model = ApproxBitConfiguration(backbone, offload_point=1, codebook_size=8, spatial_encoder=False).eval()
    x = backbone.preprocess(torch.randint(0, 256, (2, 16, 64, 64, 3), dtype=torch.uint8))
    feats = backbone.edge(x, 1)
    bits = model.encoder.encode_bits(feats)
    payload = BinaryPayload.from_bits(bits[0].numpy())
    received = torch.from_numpy(payload.decode()).float()[None]
    logits = backbone.server(model.decoder(received, tuple(feats.shape[2:])), 1)
    torch.testing.assert_close(logits, model.predict(x)[:1])
    assert feats[0].numel() * 32 / (len(payload.data) * 8) >= 32


def test_cosine_schedule_decays_to_zero_and_constant_stays():
    cos = CodecTrainingConfig(offload_point=1, codebook_size=4, spatial_encoder=False, lr=1e-3,
                              lr_schedule="cosine")
    lrs = [learning_rate(cos, s, 100) for s in range(101)]
    assert lrs[0] == 1e-3 and abs(lrs[50] - 5e-4) < 1e-12 and lrs[100] == 0.0
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))
    const = CodecTrainingConfig(offload_point=1, codebook_size=4, spatial_encoder=False, lr=1e-3)
    assert {learning_rate(const, s, 100) for s in range(101)} == {1e-3}
    const.lr_schedule = "step"
    with pytest.raises(ValueError, match="lr_schedule"):
        learning_rate(const, 0, 100)


def test_dense_spatial_encoder_survives_save_and_load(tmp_path):
    """A configuration trained with the dense spatial encoder loads back as dense: the sidecar
    records the mixing and the loader builds the matching encoder."""
    from approxbit_ros.configurations import ConfigurationSet

    torch.manual_seed(2)
    backbone = Cnn3dBackbone(Cnn3dConfig()).eval()
    backbone.save_pretrained(str(tmp_path))
    cfg = CodecTrainingConfig(offload_point=1, codebook_size=4, spatial_encoder=True, spatial_mixing="dense")
    model = ApproxBitConfiguration.from_training_config(backbone, cfg).eval()
    save_configuration(model, cfg, str(tmp_path / "configs"))
    loaded = ConfigurationSet.from_pretrained(str(tmp_path), raw_features=False)
    (c,) = loaded.configurations.values()
    assert c.encoder.spatial.groups == 1 and model.encoder.spatial.groups == 1
    x = backbone.preprocess(torch.randint(0, 256, (1, 16, 64, 64, 3), dtype=torch.uint8))
    feats = backbone.edge(x, 1)
    torch.testing.assert_close(c.encoder.encode_bits(feats), model.encoder.encode_bits(feats))


def test_position_mean_is_estimated_from_training_clips_and_saved(tmp_path):
    """The mean is the average feature map of the first clips, both sides hold it, and it
    travels through save / load."""
    from approxbit_ros.configurations import ConfigurationSet
    from approxbit_ros.data.synthetic_actions import clip_batch
    from approxbit_ros.training.clip_data import SyntheticClipData
    from approxbit_ros.training.codec_training import estimate_position_mean

    torch.manual_seed(4)
    backbone = Cnn3dBackbone(Cnn3dConfig()).eval()
    backbone.save_pretrained(str(tmp_path))
    cfg = CodecTrainingConfig(offload_point=2, codebook_size=4, spatial_encoder=False, position_mean=True)
    model = ApproxBitConfiguration.from_training_config(backbone, cfg)
    data = SyntheticClipData(epochs=1, clips_per_epoch=8)
    mean = estimate_position_mean(model, data, clips=6, batch_size=4)
    x, _ = clip_batch(data.ds, list(range(6)))
    with torch.no_grad():
        want = backbone.edge(backbone.preprocess(torch.from_numpy(x)), 2).mean(0, keepdim=True)
    torch.testing.assert_close(mean, want, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(model.decoder.position_mean, want, rtol=1e-4, atol=1e-5)
    save_configuration(model, cfg, str(tmp_path / "configs"))
    (c,) = ConfigurationSet.from_pretrained(str(tmp_path), raw_features=False).configurations.values()
    torch.testing.assert_close(c.encoder.position_mean, mean)
    torch.testing.assert_close(c.decoder.position_mean, mean)
