"""LLaVA-OneVision (transformers' ``LlavaOnevisionForConditionalGeneration``, loaded from a local
snapshot folder) split inside its SigLIP vision encoder at layer L, as ApproxBit §4 splits it.

- edge: frames -> pixels (resize, rescale, normalise as the snapshot's preprocessor says) ->
  patch embeddings and vision layers < L, for every frame: ``edge_tokens`` (F, N, D), or as the
  (1, D, F, h, w) map a binary codec takes (``tokens_to_map``);
- server: vision layers >= L (the hidden state ``vision_feature_layer`` selects), the projector,
  2x2 pooling and the newline token (the model's own ``get_video_features`` steps), the question
  in the chat prompt with one video token per feature, and generation with the model's own
  generation settings (greedy unless the snapshot says otherwise).

Splitting changes nothing: ``server_video_features(edge_tokens(pixels))`` equals the model's
``get_video_features(pixels)``, and the logits equal the unsplit model's (test). Frame
pre-processing is done here with torch (the snapshot's video processor needs torchvision): a
bicubic resize whose pixels may differ slightly from the processor's. No ROS.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

DEFAULT_SPLIT_LAYER = 8
PROMPT = "<|im_start|>user {video}\n{question}<|im_end|>\n<|im_start|>assistant\n"


def snapshot_fingerprint(folder: str) -> str:
    """A short hash of a snapshot's config.json: codecs record it, and a set refuses codecs made for another."""
    import hashlib

    with open(os.path.join(folder, "config.json"), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


@dataclass
class Answer:
    text: str
    token_ids: List[int]
    score: float = 1.0        # the answer's probability per token (geometric mean over its tokens)


class SplitLlavaOnevision:
    def __init__(self, model, tokenizer, split_layer: int = DEFAULT_SPLIT_LAYER,
                 image_mean: Sequence[float] = (0.5, 0.5, 0.5), image_std: Sequence[float] = (0.5, 0.5, 0.5),
                 chat_template: str = PROMPT):
        vision = model.model.vision_tower
        layers = len(vision.encoder.layers)
        if not 1 <= split_layer < layers:
            raise ValueError(f"split_layer {split_layer}: the vision encoder has {layers} layers; split after 1 .. "
                             f"{layers - 1}")
        self.model, self.tokenizer, self.split_layer = model.eval(), tokenizer, int(split_layer)
        self.vision = vision
        self.config = model.config
        self.image_size = int(self.config.vision_config.image_size)
        self.grid = self.image_size // int(self.config.vision_config.patch_size)
        self.mean = torch.tensor(image_mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(image_std, dtype=torch.float32).view(1, 3, 1, 1)
        self.chat_template = chat_template

    # ------------------------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(cls, folder: str, split_layer: int = DEFAULT_SPLIT_LAYER, dtype=torch.float32):
        from transformers import AutoTokenizer, LlavaOnevisionForConditionalGeneration

        if not os.path.isfile(os.path.join(folder, "config.json")):
            raise FileNotFoundError(f"{folder}: no config.json (a local LLaVA-OneVision snapshot folder)")
        model = LlavaOnevisionForConditionalGeneration.from_pretrained(folder, dtype=dtype, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        mean, std = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
        pre = os.path.join(folder, "preprocessor_config.json")
        if os.path.isfile(pre):
            with open(pre) as f:
                raw = json.load(f)
            mean, std = raw.get("image_mean", mean), raw.get("image_std", std)
        return cls(model, tokenizer, split_layer, mean, std)

    # ------------------------------------------------------------------------------------ edge
    def preprocess(self, frames: np.ndarray) -> torch.Tensor:
        """(F, H, W, 3) uint8 RGB -> (1, F, 3, S, S) pixel values."""
        x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0
        if x.shape[-2:] != (self.image_size, self.image_size):
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bicubic", align_corners=False,
                              antialias=True).clamp(0.0, 1.0)
        x = (x - self.mean) / self.std
        w = self.vision.embeddings.patch_embedding.weight
        return x.unsqueeze(0).to(device=w.device, dtype=w.dtype)

    @torch.no_grad()
    def edge_tokens(self, pixels: torch.Tensor, layer: Optional[int] = None) -> torch.Tensor:
        """(1, F, 3, S, S) -> hidden states after the first ``layer`` vision layers (default
        ``split_layer``; 0: the patch embeddings): (F, N, D)."""
        return self.edge_tokens_grad(pixels, layer)

    def edge_tokens_grad(self, pixels: torch.Tensor, layer: Optional[int] = None) -> torch.Tensor:
        """``edge_tokens`` with gradients (fine-tuning the model itself)."""
        h = self.vision.embeddings(pixels.flatten(0, 1))
        for block in self.vision.encoder.layers[: self.split_layer if layer is None else layer]:
            h = block(h, None)
        return h

    def tokens_to_map(self, tokens: torch.Tensor) -> torch.Tensor:
        """(F, N, D) -> (1, D, F, h, w): the token grid as the feature map a binary codec takes."""
        f, n, d = tokens.shape
        return tokens.reshape(f, self.grid, self.grid, d).permute(3, 0, 1, 2).unsqueeze(0)

    def map_to_tokens(self, fmap: torch.Tensor) -> torch.Tensor:
        """(1, D, F, h, w) -> (F, N, D)."""
        _, d, f, h, w = fmap.shape
        return fmap[0].permute(1, 2, 3, 0).reshape(f, h * w, d)

    # ------------------------------------------------------------------------------------ server
    @torch.no_grad()
    def server_video_features(self, tokens: torch.Tensor, layer: Optional[int] = None) -> torch.Tensor:
        """(F, N, D) hidden states after ``layer`` vision layers (default ``split_layer``) ->
        (1, F * N' + 1, text hidden) video features: the remaining vision layers, the hidden
        state ``vision_feature_layer`` picks, the projector, pooling and the newline token, as
        ``get_video_features`` does."""
        return self.server_video_features_grad(tokens, layer)

    def server_video_features_grad(self, tokens: torch.Tensor, layer: Optional[int] = None) -> torch.Tensor:
        """``server_video_features`` with gradients (codec training through the frozen model)."""
        cfg, m = self.config, self.model.model
        layers = self.vision.encoder.layers
        split = self.split_layer if layer is None else layer
        states = [None] * (split + 1)                       # hidden_states[i]: after layer i (0: embeddings)
        states[split] = tokens
        h = tokens
        for block in layers[split:]:
            h = block(h, None)
            states.append(h)
        pick = cfg.vision_feature_layer
        picks = [pick] if isinstance(pick, int) else list(pick)
        chosen = []
        for i in picks:
            index = i if i >= 0 else len(layers) + 1 + i
            if index < split:
                raise ValueError(f"vision_feature_layer {i} lies before the split at layer {split}")
            chosen.append(states[index])
        selected = torch.cat(chosen, dim=-1)
        if cfg.vision_feature_select_strategy == "default":
            selected = selected[:, 1:]
        feats = m.apply_pooling(m.multi_modal_projector(selected))
        frames = tokens.shape[0]
        feats = feats.reshape(1, frames * feats.shape[1], -1)
        return torch.cat((feats, m.image_newline[None, None, :].to(feats)), dim=1)

    def prompt_ids(self, question: str, video_tokens: int) -> torch.Tensor:
        video = self.tokenizer.convert_ids_to_tokens(self.config.video_token_id)
        text = self.chat_template.format(video=video, question=question.strip())
        ids = self.tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"][0]
        at = (ids == self.config.video_token_id).nonzero()
        if len(at) != 1:
            raise ValueError(f"the prompt holds {len(at)} video tokens, expected 1")
        i = int(at[0])
        return torch.cat([ids[:i], torch.full((video_tokens,), self.config.video_token_id), ids[i + 1:]])[None]

    def inputs_embeds(self, video_features: torch.Tensor, question: str) -> Tuple[torch.Tensor, torch.Tensor]:
        ids = self.prompt_ids(question, video_features.shape[1]).to(video_features.device)
        embeds = self.model.get_input_embeddings()(ids)
        mask = (ids == self.config.video_token_id).unsqueeze(-1).expand_as(embeds)
        return ids, embeds.masked_scatter(mask, video_features.to(embeds.dtype))

    @torch.no_grad()
    def logits(self, video_features: torch.Tensor, question: str) -> torch.Tensor:
        """The language model's logits over the prompt (for checks)."""
        _, embeds = self.inputs_embeds(video_features, question)
        return self.model(inputs_embeds=embeds).logits

    @torch.no_grad()
    def answer(self, video_features: torch.Tensor, question: str, max_new_tokens: int = 16) -> Answer:
        """Generation with the snapshot's generation config (greedy by default), the answer text
        without the prompt and special tokens."""
        _, embeds = self.inputs_embeds(video_features, question)
        out = self.model.generate(inputs_embeds=embeds, attention_mask=torch.ones(embeds.shape[:2], dtype=torch.long,
                                                                                  device=embeds.device),
                                  max_new_tokens=max_new_tokens, do_sample=False, output_scores=True,
                                  return_dict_in_generate=True,
                                  pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id)
        ids = out.sequences[0].tolist()
        logp = [float(torch.log_softmax(s[0].float(), -1)[i]) for s, i in zip(out.scores, ids)]
        score = float(np.exp(np.mean(logp))) if logp else 0.0
        return Answer(self.tokenizer.decode(ids, skip_special_tokens=True).strip(), ids, score)
