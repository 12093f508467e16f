"""Label-free training of a binary codec for a split vision-language model (ApproxBit §4 on
LLaVA-OneVision): the frozen model's own greedy answer to each (clip, question) is the target.
With the codec between the edge's tokens and the rest of the model, the loss is Eq. 3 with the
task term the cross-entropy of the teacher's answer tokens, teacher-forced at the answer
positions (the question and the video come first in the prompt), plus the reconstruction MSE of
the tokens and the binary term. AdamW at 2e-4 as the paper; resumable (one state file); tqdm
progress. No ROS.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from approxbit_ros.codec.binary_codec import BinaryCodecConfig, BinaryDecoder, BinaryEncoder


@dataclass
class VlmSample:
    frames: np.ndarray                  # (F, H, W, 3) uint8
    question: str
    answer_ids: List[int] = field(default_factory=list)   # the uncompressed model's greedy answer


@dataclass
class VlmCodec:
    encoder: BinaryEncoder
    decoder: BinaryDecoder

    @classmethod
    def build(cls, channels: int, codebook_size: int, spatial_encoder: bool, seed: int = 0) -> "VlmCodec":
        torch.manual_seed(seed)
        cfg = BinaryCodecConfig(channels=channels, codebook_size=codebook_size, spatial_encoder=spatial_encoder,
                                spatial_mixing="dense")
        return cls(BinaryEncoder(cfg), BinaryDecoder(cfg))

    def modules(self):
        return {"encoder": self.encoder, "decoder": self.decoder}

    @property
    def name(self) -> str:
        c = self.encoder.config
        return f"k{c.codebook_size}-{'enc' if c.spatial_encoder else 'noenc'}"

    def save(self, folder: str, **meta) -> str:
        """``<folder>/<name>.safetensors`` (encoder and decoder) and ``<name>.json`` (codec
        config plus ``meta``: split layer, the snapshot it belongs to, scores); returns the json."""
        import json
        import os

        from safetensors.torch import save_file

        os.makedirs(folder, exist_ok=True)
        tensors = {f"{part}.{k}": v.contiguous() for part, m in self.modules().items()
                   for k, v in m.state_dict().items()}
        save_file(tensors, os.path.join(folder, self.name + ".safetensors"))
        c = self.encoder.config
        path = os.path.join(folder, self.name + ".json")
        with open(path, "w") as f:
            json.dump({"channels": c.channels, "codebook_size": c.codebook_size, "spatial_encoder": c.spatial_encoder,
                       **meta}, f, indent=1)
        return path

    @classmethod
    def load(cls, json_path: str) -> Tuple["VlmCodec", dict]:
        import json

        from safetensors.torch import load_file

        with open(json_path) as f:
            meta = json.load(f)
        codec = cls.build(meta["channels"], meta["codebook_size"], meta["spatial_encoder"])
        tensors = load_file(json_path[: -len(".json")] + ".safetensors")
        for part, m in codec.modules().items():
            m.load_state_dict({k[len(part) + 1:]: v for k, v in tensors.items() if k.startswith(part + ".")})
            m.eval()
        return codec, meta

    def parameters(self):
        return list(self.encoder.parameters()) + list(self.decoder.parameters())

    def roundtrip(self, fmap: torch.Tensor, train: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
        """(1, D, F, h, w) -> (decoded map, X'); with ``train`` the straight-through bits."""
        if train:
            codes, xp = self.encoder(fmap)
        else:
            xp = self.encoder.logits(fmap)
            codes = (xp > 0).float()
        return self.decoder(codes, tuple(fmap.shape[2:])), xp


def split_clips(videos: Sequence[Sequence[np.ndarray]], seed: int, segment: int = 4,
                shares: Tuple[float, float] = (0.6, 0.75)) -> dict:
    """Each video's clips in time segments of ``segment`` clips, shuffled (seeded) and dealt
    60 / 15 / 25 % to train / val / test, so every split samples the whole video; the first clip
    of each segment is dropped (it shares frames with the previous segment's last)."""
    out = {"train": [], "val": [], "test": []}
    for v, clips in enumerate(videos):
        segments = [list(clips[i + 1:i + segment]) for i in range(0, len(clips), segment)]
        random.Random(f"{seed}/{v}").shuffle(segments)
        a, b = round(shares[0] * len(segments)), round(shares[1] * len(segments))
        for kind, part in (("train", segments[:a]), ("val", segments[a:b]), ("test", segments[b:])):
            out[kind] += [c for seg in part for c in seg]
    return out


def train_with_validation(split, codec: VlmCodec, samples: dict, steps: int, eval_every: int, max_new_tokens: int,
                          state_path: str, lr: float = 2e-4, seed: int = 0, progress: bool = True) -> dict:
    """``train_vlm_codec`` in chunks of ``eval_every`` steps; the checkpoint with the best answer
    agreement on ``samples["val"]`` (ties: the later) is loaded back into ``codec``; the test
    samples are scored once. Returns the scores."""
    import copy

    best, best_val, best_step = None, -1.0, 0
    for upto in range(eval_every, steps + 1, eval_every):
        train_vlm_codec(split, codec, samples["train"], steps=upto, lr=lr, seed=seed, state_path=state_path,
                        progress=progress)
        val = answer_agreement(split, codec, samples["val"], max_new_tokens)
        if val >= best_val:
            best, best_val, best_step = copy.deepcopy([m.state_dict() for m in codec.modules().values()]), val, upto
    for m, state in zip(codec.modules().values(), best):
        m.load_state_dict(state)
        m.eval()
    test = answer_agreement(split, codec, samples["test"], max_new_tokens) if samples.get("test") else None
    return {"best_step": best_step, "val_agreement": best_val, "test_agreement": test,
            "val_pairs": len(samples["val"]), "test_pairs": len(samples.get("test", []))}


def teacher_answers(split, samples: Sequence[VlmSample], max_new_tokens: int) -> None:
    """Fills each sample's ``answer_ids`` with the uncompressed model's greedy answer."""
    for s in samples:
        feats = split.server_video_features(split.edge_tokens(split.preprocess(s.frames)))
        s.answer_ids = split.answer(feats, s.question, max_new_tokens).token_ids


def answer_loss(split, video_features: torch.Tensor, question: str, answer_ids: Sequence[int]) -> torch.Tensor:
    """Cross-entropy of ``answer_ids`` given the prompt, teacher-forced: the prompt embeddings (the
    video features in the video positions) and the answer tokens in one forward pass, scored at
    the positions that predict each answer token."""
    ids, embeds = split.inputs_embeds(video_features, question)
    answer = torch.tensor(list(answer_ids), dtype=torch.long)[None]
    embeds = torch.cat([embeds, split.model.get_input_embeddings()(answer)], dim=1)
    logits = split.model(inputs_embeds=embeds).logits
    start = ids.shape[1] - 1                              # the last prompt position predicts the first answer token
    return F.cross_entropy(logits[0, start:start + answer.shape[1]], answer[0])


def train_vlm_codec(split, codec: VlmCodec, samples: Sequence[VlmSample], steps: int, *, lr: float = 2e-4,
                    lambda_recon: float = 1.0, lambda_binary: float = 0.1, seed: int = 0,
                    state_path: Optional[str] = None, progress: bool = True) -> List[dict]:
    """Trains ``codec`` (the VLM stays frozen) for ``steps`` steps, one (clip, question) per step;
    resumes from ``state_path`` when it exists and saves there every 50 steps and at the end."""
    from offload_common.training_state import has_training_state, load_training_state, save_training_state

    for p in split.model.parameters():
        p.requires_grad_(False)
    params = codec.parameters()
    optimizer = torch.optim.AdamW(params, lr=lr)
    start, history = 0, []
    if has_training_state(state_path):
        start, history, _ = load_training_state(state_path, modules=codec.modules(), optimizer=optimizer)
    rng = random.Random(seed * 1_000_003 + start)
    maps = [split.tokens_to_map(split.edge_tokens(split.preprocess(s.frames))) for s in samples]
    steps_range = range(start, steps)
    if progress:
        from tqdm import tqdm

        steps_range = tqdm(steps_range, initial=start, total=steps, desc="vlm codec", unit="step")
    codec.encoder.train()
    codec.decoder.train()
    for step in steps_range:
        i = rng.randrange(len(samples))
        fmap = maps[i]
        decoded, xp = codec.roundtrip(fmap, train=True)
        feats = split.server_video_features_grad(split.map_to_tokens(decoded))
        task = answer_loss(split, feats, samples[i].question, samples[i].answer_ids)
        recon = F.mse_loss(decoded, fmap)
        s = torch.sigmoid(xp)
        binary = F.binary_cross_entropy(s, torch.round(s).detach())
        loss = task + lambda_recon * recon + lambda_binary * binary
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append({"step": step + 1, "task": task.item(), "recon": recon.item(), "binary": binary.item()})
        if state_path and ((step + 1) % 50 == 0 or step + 1 == steps):
            save_training_state(state_path, modules=codec.modules(), optimizer=optimizer, epoch=step + 1,
                                history=history)
    codec.encoder.eval()
    codec.decoder.eval()
    return history


@torch.no_grad()
def answer_agreement(split, codec: Optional[VlmCodec], samples: Sequence[VlmSample], max_new_tokens: int) -> float:
    """Share of samples whose greedy answer through ``codec`` (None: the float16 tokens of
    DNN-Surgery) equals the uncompressed model's (``answer_ids``)."""
    same = 0
    for s in samples:
        tokens = split.edge_tokens(split.preprocess(s.frames))
        if codec is None:
            tokens = tokens.half().float()
        else:
            tokens = split.map_to_tokens(codec.roundtrip(split.tokens_to_map(tokens))[0])
        same += split.answer(split.server_video_features(tokens), s.question, max_new_tokens).token_ids == \
            list(s.answer_ids)
    return same / max(1, len(samples))
