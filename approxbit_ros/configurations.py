"""The preloaded set of ApproxBit configurations of one backbone, addressed by configuration id.

Ids (carried in every payload, chosen by the link monitor):
- ``<backbone>/o<o>/<enc|noenc>/k<K>``: ApproxBit binary codes at offload point o, spatial
  encoder on / off, codebook size K (trained, ``configs/*.safetensors`` next to the backbone);
- ``<backbone>/o<o>/deepcod/r<R>``: DeepCOD-style float codes, 1/R of the float32 map (trained);
- ``<backbone>/o<o>/float32``: DNN-Surgery, the raw float32 feature map (no weights);
- ``<vlm>/o<L>/float16``: DNN-Surgery for a vision-language model, float16 vision tokens;
- ``edge_only``: the whole backbone runs on the edge, nothing is sent.

Every configuration's weights are loaded once, at start; switching is a dictionary lookup.
"""
from __future__ import annotations

import glob
import json
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from approxbit_ros.backbones import blank_input
from approxbit_ros.codec import BinaryCodecConfig, BinaryDecoder, BinaryEncoder, BitContextModel
from approxbit_ros.codec.entropy import ENTROPY_SUFFIX
from offload_common.lookup_table import EDGE_ONLY
from offload_common.model_folder import read_weights


class ConfigIdError(ValueError):
    """A configuration id this set does not hold."""


@dataclass
class Configuration:
    """One way of splitting the backbone. ``encoder`` / ``decoder`` are None for float32."""
    config_id: str
    offload_point: int
    spatial_encoder: bool
    codebook_size: int                  # K code channels (feature channels D for float32)
    kind: str                           # "binary", "deepcod", "float32" or "float16"
    encoder: Optional[BinaryEncoder] = None
    decoder: Optional[BinaryDecoder] = None
    entropy_model: Optional[BitContextModel] = None   # range coder's model (``<id>.entropy.safetensors``)

    @property
    def float_codes(self) -> bool:
        return self.kind != "binary"


HF_VIDEO_TYPES = ("videomae", "timesformer", "vivit")     # Hugging Face video classifiers we can split


def _hf_video_class(model_type: str):
    if model_type == "videomae":
        from approxbit_ros.backbones.videomae import VideoMaeBackbone

        return VideoMaeBackbone
    from approxbit_ros.backbones.hf_video import TimesformerBackbone, VivitBackbone

    return {"timesformer": TimesformerBackbone, "vivit": VivitBackbone}[model_type]


def load_backbone(folder: str):
    """A backbone folder (config.json + model.safetensors) -> (model in eval mode, name, labels)."""
    with open(os.path.join(folder, "config.json")) as f:
        raw = json.load(f)
    kind = raw.get("model_type")
    if kind == "cnn3d":
        from approxbit_ros.backbones.cnn3d import Cnn3dBackbone

        model = Cnn3dBackbone.from_pretrained(folder)
    elif kind in HF_VIDEO_TYPES:
        from safetensors import SafetensorError

        try:
            model = _hf_video_class(kind).from_pretrained(folder)
        except (SafetensorError, OSError, ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"{folder}: not a loadable {kind} snapshot: {' '.join(str(exc).split())[:300]}") from None
        return model.eval(), kind, model.labels
    else:
        raise ValueError(f"{folder}: unknown backbone model_type {kind!r}; expected cnn3d or one of "
                         f"{', '.join(HF_VIDEO_TYPES)}")
    labels = raw.get("labels")
    if not labels:
        from approxbit_ros.data.synthetic_actions import CLASSES

        labels = list(CLASSES) if raw.get("num_classes") == len(CLASSES) else [str(i) for i in
                                                                             range(model.config.num_classes)]
    return model.eval(), kind, list(labels)


class ConfigurationSet:
    """A backbone and every configuration of it, preloaded. ``labels`` empty: the backbone has no
    classifier (a vision-language model, ``vlm/configurations.py``), only answers."""

    def __init__(self, backbone, name: str, labels: Sequence[str], configurations: Dict[str, Configuration],
                 clip_frames: int = 16, clip_size: int = 64):
        self.backbone, self.name, self.labels = backbone, name, list(labels)
        self.configurations = configurations
        self.clip_frames, self.clip_size = clip_frames, clip_size

    @classmethod
    def from_pretrained(cls, folder: str, only: Optional[Sequence[str]] = None,
                        raw_features: bool = True) -> "ConfigurationSet":
        """Load the backbone in ``folder`` and every trained configuration in ``folder/configs``
        (``only``: local ids like ``o2/enc/k4`` to restrict to). ``raw_features`` adds the
        DNN-Surgery float32 configuration at each trained offload point."""
        backbone, name, labels = load_backbone(folder)
        configs: Dict[str, Configuration] = {}
        for sidecar in sorted(glob.glob(os.path.join(folder, "configs", "*.json"))):
            with open(sidecar) as f:
                meta = json.load(f)
            local = meta["config_id"]
            if only is not None and local not in only:
                continue
            t = meta["training"]
            kind = "deepcod" if t.get("float_codes") else "binary"
            state = _codec_state(sidecar[:-len(".json")] + ".safetensors")
            mean = state["encoder"].get("position_mean")
            ccfg = BinaryCodecConfig(backbone.feature_channels(t["offload_point"]), t["codebook_size"],
                                     t["spatial_encoder"], float_codes=kind == "deepcod",
                                     spatial_mixing=t.get("spatial_mixing", "depthwise"),
                                     position_mean_shape=None if mean is None else tuple(mean.shape[2:]))
            enc, dec = BinaryEncoder(ccfg), BinaryDecoder(ccfg)
            enc.load_state_dict(state["encoder"])
            dec.load_state_dict(state["decoder"])
            cid = f"{name}/{local}"
            entropy_path = sidecar[:-len(".json")] + ENTROPY_SUFFIX
            entropy = BitContextModel.load(entropy_path) if kind == "binary" and os.path.isfile(entropy_path) else None
            configs[cid] = Configuration(cid, t["offload_point"], t["spatial_encoder"], t["codebook_size"], kind,
                                         enc.eval(), dec.eval(), entropy)
        if raw_features:
            for o in sorted({c.offload_point for c in configs.values()}):
                cid = f"{name}/o{o}/float32"
                if only is None or f"o{o}/float32" in only:
                    configs[cid] = Configuration(cid, o, False, backbone.feature_channels(o), "float32")
        return cls(backbone, name, labels, configs)

    def to(self, device: str) -> "ConfigurationSet":
        """Move the backbone and every codec to ``device`` (e.g. ``cuda``); returns self."""
        self.backbone.to(device)
        for c in self.configurations.values():
            for m in (c.encoder, c.decoder):
                if m is not None:
                    m.to(device)
        return self

    @property
    def device(self) -> torch.device:
        return next(self.backbone.parameters()).device

    @property
    def ids(self) -> List[str]:
        return list(self.configurations) + [EDGE_ONLY]

    def get(self, config_id: str) -> Configuration:
        try:
            return self.configurations[config_id]
        except KeyError:
            raise ConfigIdError(f"unknown configuration {config_id!r}; this set holds "
                                f"{', '.join(self.ids)}") from None

    def check(self, config_id: str) -> None:
        """Raise ConfigIdError unless ``config_id`` is edge_only or held here."""
        if config_id != EDGE_ONLY:
            self.get(config_id)


def load_configurations(folder: str, vlm_codecs: str = "") -> ConfigurationSet:
    """The configuration set a node serves from ``folder``: a video backbone folder
    (``ConfigurationSet.from_pretrained``) or a vision-language model snapshot with its codecs
    (``vlm_codecs``, default ``<folder>/approxbit``)."""
    from approxbit_ros.vlm.configurations import is_vlm_snapshot, load_vlm_configurations

    if is_vlm_snapshot(folder):
        return load_vlm_configurations(folder, vlm_codecs or None)
    if vlm_codecs:
        raise ValueError(f"vlm_codecs_path is set, but {folder} is not a vision-language model snapshot")
    return ConfigurationSet.from_pretrained(folder)


def _codec_state(path: str) -> Dict[str, Dict[str, torch.Tensor]]:
    """A configuration's safetensors file split into the encoder's and the decoder's state."""
    state = read_weights(path)
    return {side: {k[len(side) + 1:]: v for k, v in state.items() if k.startswith(side + ".")}
            for side in ("encoder", "decoder")}


@dataclass(frozen=True)
class WireShape:
    """What a configuration's payload holds for a clip of the set's size: the code tensor's shape
    (K, T', H', W'), the feature map's (T, H, W) and the exact byte count of its data (packed:
    range-coded data is shorter)."""
    code_shape: Tuple[int, ...]
    feature_shape: Tuple[int, int, int]
    data_bytes: int


@torch.no_grad()
def warm_up(configs: ConfigurationSet) -> Dict[str, WireShape]:
    """Run every configuration once on a zero clip so the first real clip pays no lazy setup;
    returns each configuration's payload shape for clips of ``clip_frames`` x ``clip_size``²
    (what a server accepts, exactly)."""
    x = blank_input(configs.backbone, configs.clip_frames, configs.clip_size, configs.device)
    shapes, features = {}, {}
    for c in configs.configurations.values():
        if c.offload_point not in features:      # configurations at one offload point share the edge half's run
            features[c.offload_point] = configs.backbone.edge(x, c.offload_point)
        f = features[c.offload_point]
        fs = tuple(int(s) for s in f.shape[2:])
        if c.encoder is None:
            code = tuple(int(s) for s in f.shape[1:])
        else:
            codes = c.encoder.encode(f)
            c.decoder(codes.float(), fs)
            code = tuple(int(s) for s in codes.shape[1:])
            if c.entropy_model is not None and c.entropy_model.shape != code:
                raise ValueError(f"{c.config_id}: its entropy model codes {list(c.entropy_model.shape)} but the "
                                 f"configuration sends {list(code)} for {configs.clip_frames}-frame "
                                 f"{configs.clip_size}x{configs.clip_size} clips; refit it (approxbit_fit_entropy)")
        n = int(np.prod(code))
        shapes[c.config_id] = WireShape(code, fs, {"binary": (n + 7) // 8, "float16": 2 * n}.get(c.kind, 4 * n))
    return shapes
