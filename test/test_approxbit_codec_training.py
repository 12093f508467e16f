"""One ApproxBit configuration around a frozen backbone: the backbone stays untouched, the
deployed path (hard bits through the wire format) matches training-time binarisation, and
training resumes from its checkpoint."""
import numpy as np
import torch

from approxbit_ros.backbones.cnn3d import Cnn3dBackbone, Cnn3dConfig
from approxbit_ros.codec import BinaryPayload
from approxbit_ros.training.codec_training import (ApproxBitConfiguration, CodecTrainingConfig,
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
