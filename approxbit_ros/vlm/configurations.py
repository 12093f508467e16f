"""A split LLaVA-OneVision as an ApproxBit configuration set, so the edge and server nodes, the
payload checks and the link monitor serve it exactly as they serve the action backbones.

A snapshot folder (``config.json`` with ``model_type`` ``llava_onevision``) and the codecs
``approxbit_train_vlm_codecs`` wrote (default ``<snapshot>/approxbit``) give the ids
- ``llava_onevision/o<L>/<enc|noenc>/k<K>``: 1-bit codes of the vision tokens after layer L;
- ``llava_onevision/o<L>/float16``: DNN-Surgery, the vision tokens as float16;
- ``edge_only``: the whole model on the edge.

``VlmBackbone`` gives the model the backbone interface the pipeline uses (``preprocess``,
``edge(x, o)`` -> the (1, D, F, h, w) token map, ``finish(map, o)`` -> the language model's
video features); it has no classifier, so the set has no labels and the answers come from
``VlmAnswerer`` (the ``VqaHead`` interface: ``check_question``, ``answer``). No ROS.
"""
from __future__ import annotations

import glob
import json
import os
from typing import Dict, Optional, Tuple

import numpy as np
import torch
from torch import nn

from approxbit_ros.vqa.model import Answer, QuestionError

VLM_MODEL_TYPES = ("llava_onevision",)
CODECS_FOLDER = "approxbit"
MAX_QUESTION_CHARS = 2000


def is_vlm_snapshot(folder: str) -> bool:
    """Whether ``folder`` holds a vision-language model snapshot this package can split."""
    try:
        with open(os.path.join(folder, "config.json")) as f:
            return json.load(f).get("model_type") in VLM_MODEL_TYPES
    except (OSError, ValueError, AttributeError):
        return False


class VlmBackbone(nn.Module):
    """The split model behind the backbone interface: offload point o = vision layers on the edge."""

    def __init__(self, split):
        super().__init__()
        self.split = split
        self.model = split.model                    # registered: .to(device) and .parameters() reach it

    def preprocess(self, clips: torch.Tensor) -> torch.Tensor:
        """(1, F, H, W, 3) uint8 -> (1, F, 3, S, S) pixels (the snapshot's size, mean and std)."""
        return self.split.preprocess(clips[0].cpu().numpy())

    def feature_channels(self, o: int) -> int:
        return int(self.split.config.vision_config.hidden_size)

    def edge(self, pixels: torch.Tensor, o: int) -> torch.Tensor:
        return self.split.tokens_to_map(self.split.edge_tokens(pixels, o))

    def finish(self, fmap: torch.Tensor, o: int) -> torch.Tensor:
        """The rest of the vision tower, projector and pooling: (1, F * N' + 1, text hidden)."""
        return self.split.server_video_features(self.split.map_to_tokens(fmap), o)


class VlmAnswerer:
    """Free-form answers of the split model's language model to any question about a clip's video
    features, greedy with ``max_new_tokens`` (the ``VqaHead`` interface the nodes call)."""

    def __init__(self, split, max_new_tokens: int = 32):
        if not 1 <= max_new_tokens <= 4096:
            raise ValueError(f"max_new_tokens {max_new_tokens}: expected 1 .. 4096")
        self.split, self.max_new_tokens = split, int(max_new_tokens)

    def check_question(self, question: str) -> Tuple[str, ...]:
        """The question's words the tokenizer does not know (it reads them as unknown). Raises
        QuestionError for an empty or over-long question."""
        q = question.strip()
        if not q:
            raise QuestionError("empty question")
        if len(q) > MAX_QUESTION_CHARS:
            raise QuestionError(f"{len(q)} characters (limit {MAX_QUESTION_CHARS})")
        tok = self.split.tokenizer
        if tok.unk_token_id is None:
            return ()
        return tuple(w for w in q.split() if tok.unk_token_id in tok(w, add_special_tokens=False)["input_ids"])

    @torch.no_grad()
    def answer(self, video_features: torch.Tensor, question: str) -> Answer:
        a = self.split.answer(video_features, question, self.max_new_tokens)
        return Answer(question, a.text, a.score, (a.text,), (a.score,), (), tokens=len(a.token_ids))


def codec_files(folder: str) -> Dict[str, str]:
    """``k<K>-<enc|noenc>.json`` codec descriptions in ``folder`` by name."""
    return {os.path.basename(p)[:-5]: p for p in sorted(glob.glob(os.path.join(folder, "k*-*.json")))}


def load_vlm_configurations(snapshot: str, codecs: Optional[str] = None, split_layer: Optional[int] = None,
                            dtype=torch.float32):
    """The ``ConfigurationSet`` of a LLaVA-OneVision snapshot: every trained codec in ``codecs``
    (default ``<snapshot>/approxbit``; all must share one split layer), float16 at that layer
    (``split_layer`` when there are no codecs, default 8) and edge_only. Raises ValueError for
    codecs trained on another snapshot or at mixed layers."""
    from approxbit_ros.configurations import Configuration, ConfigurationSet
    from approxbit_ros.vlm.codec_training import VlmCodec
    from approxbit_ros.vlm.split_llava import DEFAULT_SPLIT_LAYER, SplitLlavaOnevision, snapshot_fingerprint

    folder = codecs or os.path.join(snapshot, CODECS_FOLDER)
    metas = {}
    for name, path in codec_files(folder).items():
        with open(path) as f:
            metas[name] = (path, json.load(f))
    layers = {m["split_layer"] for _, m in metas.values()}
    if len(layers) > 1:
        raise ValueError(f"{folder}: codecs trained at split layers {sorted(layers)}; keep one layer per folder")
    layer = layers.pop() if layers else (split_layer or DEFAULT_SPLIT_LAYER)
    if split_layer is not None and split_layer != layer:
        raise ValueError(f"split layer {split_layer}, but the codecs in {folder} were trained at layer {layer}")
    split = SplitLlavaOnevision.from_pretrained(snapshot, split_layer=layer, dtype=dtype)
    sha = snapshot_fingerprint(snapshot)
    name = split.config.model_type
    channels = int(split.config.vision_config.hidden_size)
    configs: Dict[str, Configuration] = {}
    for local, (path, meta) in metas.items():
        if meta.get("snapshot_config_sha256", sha) != sha:
            raise ValueError(f"{path}: trained for another snapshot (config.json sha256 "
                             f"{meta['snapshot_config_sha256']}, this one {sha})")
        if meta["channels"] != channels:
            raise ValueError(f"{path}: a codec for {meta['channels']} channels; the vision encoder has {channels}")
        codec, _ = VlmCodec.load(path)
        cid = f"{name}/o{layer}/{'enc' if meta['spatial_encoder'] else 'noenc'}/k{meta['codebook_size']}"
        configs[cid] = Configuration(cid, layer, bool(meta["spatial_encoder"]), int(meta["codebook_size"]), "binary",
                                     codec.encoder, codec.decoder)
    cid = f"{name}/o{layer}/float16"
    configs[cid] = Configuration(cid, layer, False, channels, "float16")
    return ConfigurationSet(VlmBackbone(split), name, [], configs, clip_frames=8, clip_size=split.image_size)


def clip_video_features(configs, config_id: str, frames: np.ndarray) -> torch.Tensor:
    """What the server's language model reads for one clip through configuration ``config_id``
    (edge_only: the unsplit path), without the wire: for checks and profiling."""
    from approxbit_ros.configurations import EDGE_ONLY

    bb = configs.backbone
    pixels = bb.preprocess(torch.from_numpy(np.ascontiguousarray(frames))[None])
    if config_id == EDGE_ONLY:
        return bb.finish(bb.edge(pixels, 0), 0)
    c = configs.get(config_id)
    fmap = bb.edge(pixels, c.offload_point)
    if c.kind == "float16":
        fmap = fmap.half().float()
    elif c.encoder is not None:
        fmap = c.decoder(c.encoder.encode(fmap).float(), tuple(fmap.shape[2:]))
    return bb.finish(fmap, c.offload_point)


__all__ = ["VlmAnswerer", "VlmBackbone", "clip_video_features", "is_vlm_snapshot", "load_vlm_configurations"]
