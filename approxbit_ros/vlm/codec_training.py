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
