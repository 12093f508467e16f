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
    # > 0: the frozen backbone's own logits are a target too, KL at this temperature (needed for
    # unlabelled footage; see ApproxBitLoss)
    distill_temperature: float = 0.0
    keep_best: bool = False               # end with the epoch best on validation (else the last)

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

    def forward(self, x: torch.Tensor, with_teacher: bool = False):
        """(logits through the codec, features, reconstruction, encoder pre-activations[, the
        uncompressed backbone's logits when ``with_teacher``])."""
        with torch.no_grad():
            feats = self.backbone.edge(x, self.o)
            teacher = self.backbone.server(feats, self.o) if with_teacher else None
        z, xp = self.encoder(feats)
        rec = self.decoder(z, tuple(feats.shape[2:]))
        out = (self.backbone.server(rec, self.o), feats, rec, xp)
        return out + (teacher,) if with_teacher else out

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Inference exactly as deployed: hard bits through the wire, decoded on the server."""
        feats = self.backbone.edge(x, self.o)
        codes = self.encoder.encode(feats)
        return self.backbone.server(self.decoder(codes.float(), tuple(feats.shape[2:])), self.o)


@torch.no_grad()
def estimate_position_mean(model: ApproxBitConfiguration, data, clips: int, batch_size: int = 16) -> torch.Tensor:
    """Mean feature map at the offload point over ``clips`` training clips of ``data`` (a
    ``clip_data`` source); written into the encoder's and the decoder's ``position_mean``."""
    total, n = None, 0
    model.backbone.eval()
    for x in data.mean_batches(clips, batch_size):
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


def evaluate_configuration(model: ApproxBitConfiguration, split: str, clips: int, batch_size: int = 32,
                           data=None) -> dict:
    """Scores of the deployed path (hard bits) of one configuration on a split of ``data`` (the
    synthetic clips by default: accuracy; footage: agreement with the backbone)."""
    model.eval()
    predict = lambda x: model.predict(model.backbone.preprocess(torch.from_numpy(x)))   # noqa: E731
    if data is None:
        return split_accuracy(predict, split, clips, batch_size)
    return data.evaluate(predict, split, clips, batch_size)


def train_configuration(model: ApproxBitConfiguration, cfg: CodecTrainingConfig, checkpoint: Optional[str] = None,
                        progress: bool = True, on_epoch: Optional[Callable[[dict], None]] = None,
                        data=None) -> List[dict]:
    """Train the codec of ``model`` on ``data`` (a ``clip_data`` source; the synthetic clips by
    default), evaluating on its validation split after every epoch; resumable from
    ``checkpoint``. With ``cfg.keep_best`` the codec ends with its best validation epoch."""
    import copy

    from tqdm import tqdm

    from approxbit_ros.training.clip_data import SyntheticClipData

    data = data or SyntheticClipData(cfg.epochs, cfg.clips_per_epoch, cfg.seed)
    params = list(model.encoder.parameters()) + list(model.decoder.parameters())
    opt = torch.optim.Adam(params, lr=cfg.lr)
    loss_fn = ApproxBitLoss(cfg.lambda_recon, 0.0 if cfg.float_codes else cfg.lambda_binary, cfg.distill_temperature)
    history: List[dict] = []
    epoch = 0
    codec_modules = {"encoder": model.encoder, "decoder": model.decoder}
    if has_training_state(checkpoint):
        epoch, history, _ = load_training_state(checkpoint, modules=codec_modules, optimizer=opt)
    elif model.encoder.position_mean is not None:
        estimate_position_mean(model, data, cfg.position_mean_clips)
    metric = f"val_{data.metric}"
    best = (max(h[metric] for h in history), None) if history and cfg.keep_best and checkpoint else (-1.0, None)
    best_path = checkpoint + ".best" if checkpoint else None
    torch.manual_seed(cfg.seed + epoch)
    while epoch < cfg.epochs:
        model.train()
        model.backbone.eval()                  # frozen, BN statistics included
        order = data.epoch_order(epoch)
        steps = cfg.clips_per_epoch // cfg.batch_size
        parts_sum = {"task": 0.0, "recon": 0.0, "binary": 0.0}
        bar = tqdm(range(steps), desc=f"{cfg.config_id} epoch {epoch + 1}/{cfg.epochs}", disable=not progress)
        for s in bar:
            for group in opt.param_groups:
                group["lr"] = learning_rate(cfg, epoch * steps + s, cfg.epochs * steps)
            x, y = data.train_batch(order[s * cfg.batch_size:(s + 1) * cfg.batch_size].tolist())
            teach = cfg.distill_temperature > 0
            out = model(model.backbone.preprocess(torch.from_numpy(np.ascontiguousarray(x))), with_teacher=teach)
            loss, parts = loss_fn(*out[:1], torch.from_numpy(y), *out[1:4], teacher_logits=out[4] if teach else None)
            opt.zero_grad()
            loss.backward()
            opt.step()
            for k in parts_sum:
                parts_sum[k] += parts[k] / steps
            bar.set_postfix(task=f"{parts['task']:.3f}", recon=f"{parts['recon']:.3f}")
        epoch += 1
        val = evaluate_configuration(model, "val", cfg.val_clips, data=data)
        history.append({"epoch": epoch, **parts_sum, **{f"val_{k}": v for k, v in val.items()}})
        if cfg.keep_best and history[-1][metric] > best[0]:
            best = (history[-1][metric], copy.deepcopy({k: m.state_dict() for k, m in codec_modules.items()}))
            if best_path:
                os.makedirs(os.path.dirname(os.path.abspath(best_path)), exist_ok=True)
                torch.save(best[1], best_path)
        if checkpoint:
            save_training_state(checkpoint, modules=codec_modules, optimizer=opt, epoch=epoch, history=history)
        if on_epoch:
            on_epoch(history[-1])
    if cfg.keep_best and history:
        state = best[1]
        if state is None and best_path and os.path.isfile(best_path):     # resumed after the best epoch
            state = torch.load(best_path, weights_only=True)
        if state is not None:
            for k, m in codec_modules.items():
                m.load_state_dict(state[k])
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
