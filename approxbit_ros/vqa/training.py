"""Training the answer head on a frozen backbone, and measuring it through every configuration.

The backbone, its classifier and every configuration's encoder / decoder stay frozen: the head
learns from the last feature maps of training clips, every phrasing of every question per clip,
either as the whole backbone computes them (edge-only) or, with ``train_on="all"``, as edge-only
and every coded configuration (ApproxBit and DeepCOD) deliver them to the server: each question
about a clip reads the map of one source drawn at random, so one head serves every configuration.
Evaluation answers every question about each test clip from the features each configuration
delivers to the server — the codes decoded by that configuration's decoder, then the rest of the
backbone — so it measures what the codes, trained for action recognition, keep for a second task.
A blind baseline (the most common training answer per question type, no video) shows what the
questions alone give away.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from approxbit_ros.configurations import EDGE_ONLY, ConfigurationSet
from approxbit_ros.data.synthetic_actions import SyntheticActions
from approxbit_ros.vqa.model import VqaHead, VqaHeadConfig
from approxbit_ros.vqa.questions import PHRASINGS, answer_vocabulary, qa_pairs


@dataclass
class VqaTrainingConfig:
    train_clips: int = 3900
    epochs: int = 40
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    eval_clips: int = 1300
    train_on: str = "all"            # "all": edge-only and every coded configuration; "edge_only"


TRAIN_ON = ("edge_only", "all")
PHRASING_TYPES = [t for t, _ in PHRASINGS]


def _encoded_phrasings(head: VqaHead) -> Tuple[torch.Tensor, torch.Tensor]:
    """Word ids and mask (P, L) of every phrasing, in ``PHRASINGS`` order."""
    ids, mask, _ = head.encode_questions([p for _, p in PHRASINGS])
    return ids, mask


@dataclass
class SplitFeatures:
    """What a configuration delivers for clips of a split, and every question's answer about them."""
    maps: torch.Tensor              # (N, C, T, H, W) the backbone's last feature maps
    labels: torch.Tensor            # (N,) action classes
    answers: torch.Tensor           # (N, P) answer index per phrasing (``PHRASINGS`` order)


@torch.no_grad()
def final_maps(configs: ConfigurationSet, clips_uint8: np.ndarray, config_id: str = EDGE_ONLY) -> torch.Tensor:
    """(B, T, H, W, 3) uint8 clips -> (B, C, T', H', W') last feature maps as the server computes
    them under ``config_id`` (codes decoded by its decoder, then the rest of the backbone), or of
    the whole backbone for edge_only."""
    bb = configs.backbone
    x = bb.preprocess(torch.from_numpy(np.ascontiguousarray(clips_uint8)).to(configs.device))
    if config_id == EDGE_ONLY:
        return bb.finish(bb.edge(x, 0), 0)
    c = configs.get(config_id)
    feats = bb.edge(x, c.offload_point)
    if c.encoder is not None:
        feats = c.decoder(c.encoder.encode(feats).float(), tuple(feats.shape[2:]))
    return bb.finish(feats, c.offload_point)


def _answer_indices(items, answers: Sequence[str] = None) -> torch.Tensor:
    """(N, P) indices into ``answers`` (default the full answer vocabulary) of every phrasing's
    answer about each ``(clip, label, layout)`` item."""
    index = {a: i for i, a in enumerate(answers or answer_vocabulary())}
    return torch.tensor([[index[a] for _, _, a in qa_pairs(y, layout)] for _, y, layout in items])


def split_answers(split: str, clips: int, answers: Sequence[str] = None) -> torch.Tensor:
    """Every phrasing's answer (N, P) about clips 0..clips-1 of a split, without running a model."""
    ds = SyntheticActions(split, clips)
    return _answer_indices([ds.with_layout(i) for i in range(clips)], answers)


def split_features(configs: ConfigurationSet, split: str, clips: int, config_id: str = EDGE_ONLY,
                   answers: Sequence[str] = None, batch_size: int = 32, progress: bool = False) -> SplitFeatures:
    """Last feature maps, labels and answers (indices into ``answers``, default the full answer
    vocabulary) of clips 0..clips-1 of a split."""
    from tqdm import tqdm

    ds = SyntheticActions(split, clips)
    maps, labels, targets = [], [], []
    for start in tqdm(range(0, clips, batch_size), desc=f"{split} {config_id}", disable=not progress, leave=False):
        items = [ds.with_layout(i) for i in range(start, min(start + batch_size, clips))]
        maps.append(final_maps(configs, np.stack([c for c, _, _ in items]), config_id).float().cpu())
        labels += [y for _, y, _ in items]
        targets.append(_answer_indices(items, answers))
    return SplitFeatures(torch.cat(maps), torch.tensor(labels), torch.cat(targets))


def training_sources(configs: ConfigurationSet, train_on: str) -> List[str]:
    """The configurations whose maps the head learns from: edge-only, and for ``"all"`` every
    configuration with an encoder (float32 splits deliver the edge-only map unchanged)."""
    if train_on not in TRAIN_ON:
        raise ValueError(f"train_on must be one of {TRAIN_ON}, got {train_on!r}")
    coded = [cid for cid, c in configs.configurations.items() if c.encoder is not None]
    return [EDGE_ONLY] + (coded if train_on == "all" else [])


def new_head(configs: ConfigurationSet) -> VqaHead:
    """An untrained head for the backbone's last feature map at the set's clip size."""
    shape = final_maps(configs, np.zeros((1, configs.clip_frames, configs.clip_size, configs.clip_size, 3),
                                         np.uint8)).shape
    return VqaHead(VqaHeadConfig(feature_dim=shape[1], grid=list(shape[2:])))


def train_head(head: VqaHead, data, cfg: VqaTrainingConfig, progress: bool = True) -> List[float]:
    """Train ``head`` on one ``SplitFeatures`` or a list of them (the same clips as several
    configurations deliver them): every epoch asks every question type about each clip once, in
    one of its phrasings drawn at random, reading the map of a source drawn at random. Returns the
    mean loss per epoch."""
    from tqdm import tqdm

    sources = [data] if isinstance(data, SplitFeatures) else list(data)
    if any(not torch.equal(s.answers, sources[0].answers) for s in sources[1:]):
        raise ValueError("training sources must hold the same clips")
    maps = torch.stack([s.maps for s in sources]) if len(sources) > 1 else sources[0].maps[None]
    data = sources[0]
    torch.manual_seed(cfg.seed)
    word_ids, word_mask = _encoded_phrasings(head)
    types = list(dict.fromkeys(PHRASING_TYPES))
    first = torch.tensor([PHRASING_TYPES.index(t) for t in types])      # phrasings of a type are consecutive
    count = torch.tensor([PHRASING_TYPES.count(t) for t in types])
    n, k = len(data.maps), len(types)
    opt = torch.optim.AdamW(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = -(-n * k // cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=cfg.epochs * steps)
    gen = torch.Generator().manual_seed(cfg.seed)
    losses = []
    head.train()
    bar = tqdm(range(cfg.epochs), desc="VQA head", disable=not progress)
    for _ in bar:
        order = torch.randperm(n * k, generator=gen)
        total = 0.0
        for s in range(steps):
            pick = order[s * cfg.batch_size:(s + 1) * cfg.batch_size]
            clip, qt = pick // k, pick % k
            phr = first[qt] + (torch.rand(len(pick), generator=gen) * count[qt]).long()
            src = torch.randint(len(maps), (len(pick),), generator=gen) if len(maps) > 1 else torch.zeros_like(clip)
            loss = F.cross_entropy(head(maps[src, clip], word_ids[phr], word_mask[phr]), data.answers[clip, phr])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(pick)
        losses.append(total / (n * k))
        bar.set_postfix(loss=f"{losses[-1]:.4f}")
    head.eval()
    return losses


@torch.no_grad()
def answer_accuracy(head: VqaHead, data: SplitFeatures, batch_size: int = 256) -> Dict[str, float]:
    """Accuracy over every phrasing of every question about each clip: overall and per question type."""
    word_ids, word_mask = _encoded_phrasings(head)
    hits: Dict[str, List[int]] = {t: [0, 0] for t in PHRASING_TYPES}
    for i, t in enumerate(PHRASING_TYPES):
        for s in range(0, len(data.maps), batch_size):
            maps = data.maps[s:s + batch_size]
            pred = head(maps, word_ids[i:i + 1].expand(len(maps), -1), word_mask[i:i + 1].expand(len(maps), -1))
            hits[t][0] += int((pred.argmax(1) == data.answers[s:s + batch_size, i]).sum())
            hits[t][1] += len(maps)
    out = {t: c / n for t, (c, n) in hits.items()}
    out["all"] = sum(c for c, _ in hits.values()) / sum(n for _, n in hits.values())
    return out


def blind_accuracy(train_answers: torch.Tensor, test_answers: torch.Tensor) -> Dict[str, float]:
    """The no-video baseline: always the most common training answer of each question type
    (answers (N, P) as ``SplitFeatures.answers`` or ``split_answers`` give them)."""
    types = list(dict.fromkeys(PHRASING_TYPES))
    out = {}
    for t in types:
        cols = [i for i, ti in enumerate(PHRASING_TYPES) if ti == t]
        common = Counter(train_answers[:, cols].flatten().tolist()).most_common(1)[0][0]
        out[t] = float((test_answers[:, cols] == common).float().mean())
    out["all"] = float(np.mean([out[t] for t in types]))     # equal phrasings per type
    return out


def evaluate_configurations(head: VqaHead, configs: ConfigurationSet, clips: int,
                            config_ids: Optional[Sequence[str]] = None, progress: bool = True) -> Dict[str, dict]:
    """Answer accuracy (overall and per question type) and action top-1 through each configuration."""
    out = {}
    for cid in config_ids or [EDGE_ONLY] + list(configs.configurations):
        data = split_features(configs, "test", clips, cid, head.config.answers, progress=progress)
        acc = answer_accuracy(head, data)
        with torch.no_grad():
            logits = configs.backbone.classify_map(data.maps.to(configs.device)).cpu()
        acc["action_top1"] = float((logits.argmax(1) == data.labels).float().mean())
        out[cid] = acc
    return out


__all__ = ["SplitFeatures", "VqaTrainingConfig", "answer_accuracy", "blind_accuracy", "evaluate_configurations",
           "final_maps", "new_head", "split_answers", "split_features", "train_head", "training_sources"]
