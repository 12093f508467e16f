"""Training a backbone from scratch on the synthetic action dataset: fresh clips every epoch
(the generator is endless), Adam + cosine schedule, validation each epoch, resumable
checkpoints (loaded with torch.load(weights_only=True)), seeded."""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Callable, List, Optional

import numpy as np
import torch
import torch.nn.functional as F

from approxbit_ros.data.synthetic_actions import SyntheticActions, clip_batch, clip_batches
from offload_common.training_state import has_training_state, load_training_state, save_training_state


@dataclass
class BackboneTrainingConfig:
    epochs: int = 12
    clips_per_epoch: int = 2600
    batch_size: int = 16
    lr: float = 2e-3
    weight_decay: float = 1e-4
    val_clips: int = 390
    seed: int = 0
    single_frame: bool = False     # baseline: every frame replaced by the middle one
    grad_clip: float = 0.0         # max gradient norm (0: off); the transformer wants 1.0
    warmup: float = 0.15           # fraction of the steps the learning rate ramps up over


def as_input(clips: np.ndarray, single_frame: bool) -> torch.Tensor:
    x = torch.from_numpy(clips)
    if single_frame:
        mid = x.shape[1] // 2
        x = x[:, mid:mid + 1].expand(-1, x.shape[1], -1, -1, -1)
    return x


@torch.no_grad()
def split_accuracy(predict: Callable[[np.ndarray], torch.Tensor], split: str, clips: int,
                   batch_size: int = 32) -> dict:
    """Top-1 / top-5 accuracy of ``predict`` (uint8 clips -> logits) on a split (balanced:
    clips is a multiple of the class count)."""
    ds = SyntheticActions(split, clips)
    top1 = top5 = 0
    for x, y in clip_batches(ds, clips, batch_size):
        top = predict(x).topk(5, dim=1).indices
        yt = torch.from_numpy(y)
        top1 += int((top[:, 0] == yt).sum())
        top5 += int((top == yt[:, None]).any(dim=1).sum())
    return {"top1": top1 / clips, "top5": top5 / clips}


def evaluate(model, split: str, clips: int, single_frame: bool = False, batch_size: int = 32) -> dict:
    """Accuracy of a whole backbone (edge-only)."""
    model.eval()
    return split_accuracy(lambda x: model(model.preprocess(as_input(x, single_frame))), split, clips, batch_size)


class BackboneTrainer:
    """``distiller`` (optional, see ``distillation.py``): a trained teacher whose logits and
    feature maps guide the model; otherwise plain cross-entropy."""

    def __init__(self, model, config: BackboneTrainingConfig, distiller=None):
        self.model, self.cfg, self.distiller = model, config, distiller
        torch.manual_seed(config.seed)
        params = list(model.parameters()) + (list(distiller.trainable_parameters()) if distiller else [])
        self.opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
        steps = config.epochs * (config.clips_per_epoch // config.batch_size)
        self.sched = torch.optim.lr_scheduler.OneCycleLR(self.opt, max_lr=config.lr, total_steps=max(steps, 1),
                                                         pct_start=config.warmup)
        self.train_set = SyntheticActions("train", config.epochs * config.clips_per_epoch)
        self.epoch = 0
        self.history: List[dict] = []

    def train(self, checkpoint_dir: Optional[str] = None, progress: bool = True,
              on_epoch: Optional[Callable[[dict], None]] = None, stop_after: Optional[int] = None) -> List[dict]:
        """Train to ``epochs`` (resuming from ``checkpoint_dir``); ``stop_after`` ends this call
        after that many epochs, as an interruption would."""
        from tqdm import tqdm

        if checkpoint_dir and has_training_state(self._state_path(checkpoint_dir)):
            self.load_checkpoint(checkpoint_dir)
        cfg = self.cfg
        run = 0
        while self.epoch < cfg.epochs and (stop_after is None or run < stop_after):
            run += 1
            self.model.train()
            if self.distiller:
                self.distiller.train()
            first = self.epoch * cfg.clips_per_epoch
            order = first + np.random.default_rng([cfg.seed, self.epoch]).permutation(cfg.clips_per_epoch)
            steps = cfg.clips_per_epoch // cfg.batch_size
            bar = tqdm(range(steps), desc=f"epoch {self.epoch + 1}/{cfg.epochs}", disable=not progress)
            parts = []
            for s in bar:
                x, y = clip_batch(self.train_set, order[s * cfg.batch_size:(s + 1) * cfg.batch_size].tolist())
                loss, part = self._loss(as_input(x, cfg.single_frame), torch.from_numpy(y))
                parts.append(part)
                self.opt.zero_grad()
                loss.backward()
                if cfg.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
                self.opt.step()
                self.sched.step()
                bar.set_postfix({k: f"{np.mean([p[k] for p in parts[-20:]]):.3f}" for k in part})
            val = evaluate(self.model, "val", cfg.val_clips, cfg.single_frame)
            self.epoch += 1
            stats = {"epoch": self.epoch, **{k: float(np.mean([p[k] for p in parts])) for k in parts[0]},
                     "val_top1": val["top1"], "val_top5": val["top5"]}
            self.history.append(stats)
            if checkpoint_dir:
                self.save_checkpoint(checkpoint_dir)
            if on_epoch:
                on_epoch(stats)
        return self.history

    def _loss(self, clips: torch.Tensor, labels: torch.Tensor):
        """(loss, {name: value} for the progress bar and history)."""
        if self.distiller:
            loss, logits, part = self.distiller.loss(self.model, clips, labels)
        else:
            logits = self.model(self.model.preprocess(clips))
            loss = F.cross_entropy(logits, labels, label_smoothing=0.05)
            part = {}
        acc = (logits.argmax(1) == labels).float().mean().item()
        return loss, {"loss": loss.item(), **part, "acc": acc}

    def _modules(self) -> dict:
        return {"model": self.model, **({"adapters": self.distiller.adapters} if self.distiller else {})}

    def _state_path(self, folder: str) -> str:
        return os.path.join(folder, "trainer_state.pt")

    def save_checkpoint(self, folder: str) -> None:
        save_training_state(self._state_path(folder), modules=self._modules(), optimizer=self.opt,
                            scheduler=self.sched, epoch=self.epoch, history=self.history)

    def load_checkpoint(self, folder: str) -> None:
        self.epoch, self.history, _ = load_training_state(self._state_path(folder), modules=self._modules(),
                                                          optimizer=self.opt, scheduler=self.sched)


def config_dict(cfg: BackboneTrainingConfig) -> dict:
    return asdict(cfg)
