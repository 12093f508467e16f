"""The answer head: a question (bag of words) and the backbone's last feature map -> answer.

It reads the map the backbone's own classifier pools (``backbone.finish(h, o)``), so on the
server it runs on what the rest of the backbone made of the features the ApproxBit decoder
rebuilt from the binary codes, and on the edge (edge-only) on the whole backbone's. The question
chooses where in space and time to look (attention over the map's positions, which carry a
learned position embedding) and how to read what it finds. Saved beside the backbone as
``vqa/config.json`` + ``vqa/model.safetensors``.
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from typing import List, Sequence, Tuple

import torch
from torch import nn

from approxbit_ros.vqa.questions import answer_vocabulary, question_vocabulary, words
from offload_common.model_folder import load_model_folder, save_model_folder

VQA_FOLDER = "vqa"


class QuestionError(ValueError):
    """A question the head cannot read (no word it knows)."""


@dataclass
class VqaHeadConfig:
    feature_dim: int                        # channels of the backbone's last feature map
    grid: List[int] = field(default_factory=lambda: [4, 4, 4])     # its (T, H, W)
    words: List[str] = field(default_factory=question_vocabulary)
    answers: List[str] = field(default_factory=answer_vocabulary)
    word_dim: int = 32
    hidden: int = 256
    dropout: float = 0.1


@dataclass(frozen=True)
class Answer:
    question: str
    answer: str
    score: float
    candidates: Tuple[str, ...]             # best first, the answer included
    candidate_scores: Tuple[float, ...]
    unknown_words: Tuple[str, ...]          # words of the question the head has not seen
    tokens: int = 0                         # tokens a language model generated (0: a classifier's answer)


class VqaHead(nn.Module):
    """``forward(feature map (B, C, T, H, W), word_ids (B, L), word_mask (B, L)) -> answer logits (B, A)``."""

    def __init__(self, config: VqaHeadConfig):
        super().__init__()
        self.config = config
        c, h = config.feature_dim, config.hidden
        self.word_index = {w: i for i, w in enumerate(config.words)}
        self.embed = nn.Embedding(len(config.words), config.word_dim)
        self.tokens = nn.Sequential(nn.LayerNorm(c), nn.Linear(c, h))
        self.position = nn.Parameter(torch.zeros(1, math.prod(config.grid), h))
        self.query = nn.Linear(config.word_dim, h)          # where to look
        self.gate = nn.Linear(config.word_dim, 2 * h)       # how to read what it sees
        self.mlp = nn.Sequential(nn.GELU(), nn.Dropout(config.dropout), nn.Linear(2 * h, h), nn.GELU(),
                                 nn.Linear(h, len(config.answers)))

    def forward(self, feature_map: torch.Tensor, word_ids: torch.Tensor, word_mask: torch.Tensor) -> torch.Tensor:
        if list(feature_map.shape[1:]) != [self.config.feature_dim, *self.config.grid]:
            raise ValueError(f"feature map {list(feature_map.shape[1:])}: this head reads "
                             f"{[self.config.feature_dim, *self.config.grid]} maps (the clip size it was trained with)")
        m = word_mask.unsqueeze(-1).float()
        q = (self.embed(word_ids) * m).sum(1) / m.sum(1).clamp(min=1.0)
        tokens = self.tokens(feature_map.flatten(2).transpose(1, 2).float()) + self.position     # (B, N, h)
        scores = (tokens @ self.query(q).unsqueeze(-1)).squeeze(-1) / math.sqrt(tokens.shape[-1])
        looked = (torch.softmax(scores, 1).unsqueeze(-1) * tokens).sum(1)
        seen = torch.cat([looked, tokens.mean(1)], dim=1)
        return self.mlp(seen * 2 * torch.sigmoid(self.gate(q)))

    def encode_questions(self, questions: Sequence[str]) -> Tuple[torch.Tensor, torch.Tensor, List[Tuple[str, ...]]]:
        """Word ids (B, L), mask (B, L) and each question's unknown words. Raises QuestionError
        for a question with no known word."""
        ids, unknown = [], []
        for q in questions:
            ws = words(q)
            known = [self.word_index[w] for w in ws if w in self.word_index]
            if not known:
                raise QuestionError(f"question {q!r} has no word the answer head knows (it was trained on "
                                    f"questions like 'which way does the object move?')")
            ids.append(known)
            unknown.append(tuple(w for w in ws if w not in self.word_index))
        length = max(len(i) for i in ids)
        dev = self.embed.weight.device
        word_ids = torch.zeros(len(ids), length, dtype=torch.long, device=dev)
        mask = torch.zeros(len(ids), length, dtype=torch.bool, device=dev)
        for row, i in enumerate(ids):
            word_ids[row, :len(i)] = torch.tensor(i, device=dev)
            mask[row, :len(i)] = True
        return word_ids, mask, unknown

    def check_question(self, question: str) -> Tuple[str, ...]:
        """The question's words this head has not seen (they are ignored when it answers).
        Raises QuestionError when it knows none of them."""
        return self.encode_questions([question])[2][0]

    @torch.no_grad()
    def answer(self, feature_map: torch.Tensor, question: str, top: int = 3) -> Answer:
        """Answer one question about one clip (``feature_map``: (1, C, T, H, W))."""
        ids, mask, unknown = self.encode_questions([question])
        probs = torch.softmax(self(feature_map, ids, mask)[0], dim=0)
        scores, idx = probs.topk(min(top, probs.numel()))
        cands = tuple(self.config.answers[i] for i in idx.tolist())
        return Answer(question, cands[0], float(scores[0]), cands, tuple(float(s) for s in scores), unknown[0])

    def save_pretrained(self, folder: str, extra: dict = None) -> None:
        save_model_folder(folder, "approxbit_vqa_head", asdict(self.config), self.state_dict(), extra)

    @classmethod
    def from_pretrained(cls, folder: str) -> "VqaHead":
        return load_model_folder(folder, VqaHeadConfig, cls)


def vqa_folder(backbone_folder: str) -> str:
    """Where a backbone's answer head lives."""
    return os.path.join(backbone_folder, VQA_FOLDER)
