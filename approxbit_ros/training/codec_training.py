"""Training one ApproxBit configuration: the backbone is frozen; the binary encoder / decoder
at offload point o learn with Eq. 3 (CE on the backbone's output through the decoded features +
lambda1 * MSE reconstruction + lambda2 * binary BCE); Adam 1e-3 (paper §4), constant or with a
per-step cosine decay to zero over the run (``lr_schedule="cosine"``). Fresh synthetic clips every
epoch; resumable; the result is saved as a small safetensors file per configuration."""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from typing import Callable, List, Optional

import numpy as np
import torch

from approxbit_ros.backbones import blank_input
from approxbit_ros.codec import ApproxBitLoss, BinaryCodecConfig, BinaryDecoder, BinaryEncoder
from approxbit_ros.data.synthetic_actions import SyntheticActions, clip_batch, clip_batches
from approxbit_ros.training.backbone_training import split_accuracy
from offload_common.training_state import has_training_state, load_training_state, save_training_state


@dataclass
class CodecTrainingConfig:
    offload_point: int
    codebook_size: int
    spatial_encoder: bool
    epochs: int = 4
    clips_per_epoch: int = 1600
    batch_size: int = 16
    lr: float = 1e-3
    lambda_recon: float = 1.0
    lambda_binary: float = 1.0
    val_clips: int = 260
    seed: int = 0
    # DeepCOD-style float baseline: codes not binarised (binary loss off); the id names the
    # compression ratio against the float32 feature map
    float_codes: bool = False
    compression_ratio: int = 0
    spatial_mixing: str = "depthwise"     # see BinaryCodecConfig
    lr_schedule: str = "constant"         # or "cosine": decays to 0 at the last step of ``epochs``
    position_mean: bool = False           # code x - (per-position mean map); see BinaryCodecConfig
    position_mean_clips: int = 256        # training clips the mean is estimated from

    @property
    def config_id(self) -> str:
        if self.float_codes:
            return f"o{self.offload_point}/deepcod/r{self.compression_ratio}"
        return f"o{self.offload_point}/{'enc' if self.spatial_encoder else 'noenc'}/k{self.codebook_size}"


class ApproxBitConfiguration(torch.nn.Module):
    """Encoder + decoder of one configuration around a frozen backbone."""

    def __init__(self, backbone, offload_point: int, codebook_size: int, spatial_encoder: bool,
                 float_codes: bool = False, spatial_mixing: str = "depthwise", position_mean: bool = False):
        super().__init__()
        self.backbone = backbone
        for p in backbone.parameters():
            p.requires_grad_(False)
        self.o = offload_point
        shape = None
        if position_mean:
            with torch.no_grad():
                shape = tuple(backbone.edge(blank_input(backbone), offload_point).shape[2:])
        cfg = BinaryCodecConfig(backbone.feature_channels(offload_point), codebook_size, spatial_encoder,
                                float_codes=float_codes, spatial_mixing=spatial_mixing, position_mean_shape=shape)
        self.encoder, self.decoder = BinaryEncoder(cfg), BinaryDecoder(cfg)

    @classmethod
    def from_training_config(cls, backbone, cfg: "CodecTrainingConfig") -> "ApproxBitConfiguration":
        """The untrained configuration ``cfg`` describes, around ``backbone``."""
        return cls(backbone, cfg.offload_point, cfg.codebook_size, cfg.spatial_encoder, cfg.float_codes,
                   cfg.spatial_mixing, cfg.position_mean)

    def forward(self, x: torch.Tensor):
        with torch.no_grad():
            feats = self.backbone.edge(x, self.o)
        z, xp = self.encoder(feats)
        rec = self.decoder(z, tuple(feats.shape[2:]))
        return self.backbone.server(rec, self.o), feats, rec, xp

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Inference exactly as deployed: hard bits through the wire, decoded on the server."""
        feats = self.backbone.edge(x, self.o)
        codes = self.encoder.encode(feats)
        return self.backbone.server(self.decoder(codes.float(), tuple(feats.shape[2:])), self.o)


@torch.no_grad()
def estimate_position_mean(model: ApproxBitConfiguration, ds: SyntheticActions, clips: int,
                           batch_size: int = 16) -> torch.Tensor:
    """Mean feature map at the offload point over the first ``clips`` clips of ``ds``; written
    into the encoder's and the decoder's ``position_mean``."""
    total, n = None, 0
    model.backbone.eval()
    for x, _ in clip_batches(ds, clips, batch_size):
        f = model.backbone.edge(model.backbone.preprocess(torch.from_numpy(x)), model.o)
        total = f.sum(0, keepdim=True) if total is None else total + f.sum(0, keepdim=True)
        n += f.shape[0]
    mean = total / n
    model.encoder.position_mean.copy_(mean)
    model.decoder.position_mean.copy_(mean)
    return mean


def learning_rate(cfg: CodecTrainingConfig, step: int, total_steps: int) -> float:
    """The learning rate at ``step`` of ``total_steps``."""
    if cfg.lr_schedule == "constant":
        return cfg.lr
    if cfg.lr_schedule == "cosine":
        return 0.5 * cfg.lr * (1.0 + math.cos(math.pi * min(step, total_steps) / max(1, total_steps)))
    raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {cfg.lr_schedule!r}")


def evaluate_configuration(model: ApproxBitConfiguration, split: str, clips: int, batch_size: int = 32) -> dict:
    """Accuracy of the deployed path (hard bits) of one configuration."""
    model.eval()
    return split_accuracy(lambda x: model.predict(model.backbone.preprocess(torch.from_numpy(x))), split, clips,
                          batch_size)


def train_configuration(model: ApproxBitConfiguration, cfg: CodecTrainingConfig, checkpoint: Optional[str] = None,
                        progress: bool = True, on_epoch: Optional[Callable[[dict], None]] = None) -> List[dict]:
    from tqdm import tqdm

    params = list(model.encoder.parameters()) + list(model.decoder.parameters())
    opt = torch.optim.Adam(params, lr=cfg.lr)
    loss_fn = ApproxBitLoss(cfg.lambda_recon, 0.0 if cfg.float_codes else cfg.lambda_binary)
    ds = SyntheticActions("train", cfg.epochs * cfg.clips_per_epoch)
    history: List[dict] = []
    epoch = 0
    codec_modules = {"encoder": model.encoder, "decoder": model.decoder}
    if has_training_state(checkpoint):
        epoch, history, _ = load_training_state(checkpoint, modules=codec_modules, optimizer=opt)
    elif model.encoder.position_mean is not None:
        estimate_position_mean(model, ds, cfg.position_mean_clips)
    torch.manual_seed(cfg.seed + epoch)
    while epoch < cfg.epochs:
        model.train()
        model.backbone.eval()                  # frozen, BN statistics included
        order = epoch * cfg.clips_per_epoch + np.random.default_rng([cfg.seed, epoch]).permutation(cfg.clips_per_epoch)
        steps = cfg.clips_per_epoch // cfg.batch_size
        parts_sum = {"task": 0.0, "recon": 0.0, "binary": 0.0}
        bar = tqdm(range(steps), desc=f"{cfg.config_id} epoch {epoch + 1}/{cfg.epochs}", disable=not progress)
        for s in bar:
            for group in opt.param_groups:
                group["lr"] = learning_rate(cfg, epoch * steps + s, cfg.epochs * steps)
            x, y = clip_batch(ds, order[s * cfg.batch_size:(s + 1) * cfg.batch_size].tolist())
            logits, feats, rec, xp = model(model.backbone.preprocess(torch.from_numpy(x)))
            loss, parts = loss_fn(logits, torch.from_numpy(y), feats, rec, xp)
            opt.zero_grad()
            loss.backward()
            opt.step()
            for k in parts_sum:
                parts_sum[k] += parts[k] / steps
            bar.set_postfix(task=f"{parts['task']:.3f}", recon=f"{parts['recon']:.3f}")
        epoch += 1
        val = evaluate_configuration(model, "val", cfg.val_clips)
        history.append({"epoch": epoch, **parts_sum, "val_top1": val["top1"], "val_top5": val["top5"]})
        if checkpoint:
            save_training_state(checkpoint, modules=codec_modules, optimizer=opt, epoch=epoch, history=history)
        if on_epoch:
            on_epoch(history[-1])
    return history


def save_configuration(model: ApproxBitConfiguration, cfg: CodecTrainingConfig, folder: str, extra: dict = None) -> str:
    """encoder/decoder weights as ``<config id with / -> _>.safetensors`` + a JSON sidecar."""
    from safetensors.torch import save_file

    os.makedirs(folder, exist_ok=True)
    name = cfg.config_id.replace("/", "_")
    state = {f"encoder.{k}": v.contiguous() for k, v in model.encoder.state_dict().items()}
    state.update({f"decoder.{k}": v.contiguous() for k, v in model.decoder.state_dict().items()})
    path = os.path.join(folder, name + ".safetensors")
    save_file(state, path)
    with open(os.path.join(folder, name + ".json"), "w") as f:
        json.dump({"config_id": cfg.config_id, "training": asdict(cfg), **(extra or {})}, f, indent=1)
    return path
