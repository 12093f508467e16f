"""A tiny LLaVA-OneVision for tests and the codec experiment, made here (nothing downloads): a
4-layer SigLIP vision encoder on 32x32 frames (4x4 patches), a 2-layer Qwen2 language model and
a word-level tokenizer with the chat template's special tokens, saved as a local snapshot folder
(config.json, safetensors, tokenizer, preprocessor_config.json) like a real one.

Random weights answer every question alike (the language model ignores the video), which makes a
useless teacher for label-free codec training; ``fine_tune_teacher`` gives it a reason to look:
a few thousand steps on clips of real footage answering two templated questions from what the
pixels say (``weak_answer``: where the image's contrast centroid moves, which colour channel
dominates). The codecs are then trained on its answers, not on those weak labels.
"""
from __future__ import annotations

import json
import os
import random
from typing import List, Sequence, Tuple

import numpy as np

QUESTIONS = ("which way does the object move ?", "what colour is the object ?")

WORDS = ("user assistant what which way does the object move moves is it left right up down nothing "
         "where colour red green blue a an one two three yes no ? . , \n").split(" ")
SPECIAL = ["<unk>", "<pad>", "<|im_start|>", "<|im_end|>", "<video>", "<image>"]


def tiny_tokenizer():
    """A word-level tokenizer over the templated questions' words and the chat special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(SPECIAL + [w for w in WORDS if w])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece(prefix="##")          # joins words with spaces
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", eos_token="<|im_end|>",
                                   additional_special_tokens=["<|im_start|>", "<video>", "<image>"])


def write_tiny_llava(folder: str, seed: int = 0, vision_layers: int = 4) -> str:
    """Writes a random tiny LLaVA-OneVision snapshot to ``folder``; returns it."""
    import torch
    from transformers import LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration, Qwen2Config, SiglipVisionConfig

    tokenizer = tiny_tokenizer()
    vision = SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=vision_layers,
                                num_attention_heads=2, image_size=32, patch_size=8)
    text = Qwen2Config(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                       num_key_value_heads=1, vocab_size=len(tokenizer), max_position_embeddings=512,
                       eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    config = LlavaOnevisionConfig(vision_config=vision, text_config=text,
                                  video_token_id=tokenizer.convert_tokens_to_ids("<video>"),
                                  image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
                                  vision_feature_layer=-1, vision_feature_select_strategy="full")
    torch.manual_seed(seed)
    model = LlavaOnevisionForConditionalGeneration(config).eval()
    with torch.no_grad():                                  # a newline token that is not all zeros
        model.model.image_newline.normal_(0, 0.02)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    with open(os.path.join(folder, "preprocessor_config.json"), "w") as f:
        json.dump({"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "size": {"height": 32, "width": 32}}, f)
    return folder


def weak_answer(clip: np.ndarray, question: str) -> str:
    """What the pixels say: the dominant colour channel for the colour question; for the motion
    question the direction the grey-level contrast centroid moves from the first to the last
    frame ('nothing' under 0.05 pixel)."""
    if "colour" in question:
        m = clip.reshape(-1, 3).mean(0)
        return ("red", "green", "blue")[int(np.argmax(m - m.mean()))]
    g = clip.astype(np.float64).mean(-1)
    ys, xs = np.mgrid[0:g.shape[1], 0:g.shape[2]]

    def centroid(im):
        w = np.abs(im - im.mean()) + 1e-9
        return (w * xs).sum() / w.sum(), (w * ys).sum() / w.sum()

    (x0, y0), (x1, y1) = centroid(g[0]), centroid(g[-1])
    if max(abs(x1 - x0), abs(y1 - y0)) < 0.05:
        return "nothing"
    if abs(x1 - x0) > abs(y1 - y0):
        return "right" if x1 > x0 else "left"
    return "down" if y1 > y0 else "up"


def footage_clips(path: str, frames: int = 4, stride: int = 2, step: int = 6, size: Tuple[int, int] = (48, 36),
                  limit: int = 1000) -> List[np.ndarray]:
    """Clips of ``frames`` frames ``stride`` apart, starting every ``step`` frames, resized."""
    import cv2

    cap = cv2.VideoCapture(path)
    video = []
    while len(video) < limit:
        ok, bgr = cap.read()
        if not ok:
            break
        video.append(cv2.resize(np.ascontiguousarray(bgr[:, :, ::-1]), size))
    span = (frames - 1) * stride + 1
    return [np.stack(video[i:i + span:stride]) for i in range(0, len(video) - span + 1, step)]


def fine_tune_teacher(split, clips: Sequence[np.ndarray], steps: int = 2500, lr: float = 1e-3, seed: int = 0,
                      questions: Sequence[str] = QUESTIONS) -> List[float]:
    """Trains the whole tiny model to answer ``questions`` about ``clips`` with ``weak_answer``
    (then freezes it); returns the losses."""
    import torch

    from approxbit_ros.vlm.codec_training import answer_loss

    rng = random.Random(seed)
    torch.manual_seed(seed)
    end = split.tokenizer.convert_tokens_to_ids("<|im_end|>")
    data = [(c, q, [split.tokenizer.convert_tokens_to_ids(weak_answer(c, q)), end]) for c in clips for q in questions]
    params = [p for p in split.model.parameters()]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    split.model.train()
    losses = []
    for _ in range(steps):
        clip, question, answer = rng.choice(data)
        feats = split.server_video_features_grad(split.edge_tokens_grad(split.preprocess(clip)))
        loss = answer_loss(split, feats, question, answer)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    split.model.eval()
    for p in params:
        p.requires_grad_(False)
    return losses
