"""A model folder as the project's own models write it, in the Hugging Face layout:
``config.json`` (a ``model_type`` tag, the model's config dataclass and an optional training
record) beside ``model.safetensors``. Used by ``Cnn3dBackbone``, ``EmphasisModel`` and
``VqaHead``; weights load through safetensors only. Plain Python, no ROS."""
from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Dict, Optional

if TYPE_CHECKING:
    import torch

CONFIG_NAME, WEIGHTS_NAME = "config.json", "model.safetensors"


def save_model_folder(folder: str, model_type: str, config: dict, state_dict: Dict[str, "torch.Tensor"],
                      extra: Optional[dict] = None) -> None:
    """Write ``config.json`` ({model_type, **config, **extra}) and ``model.safetensors``."""
    from safetensors.torch import save_file

    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, CONFIG_NAME), "w") as f:
        json.dump({"model_type": model_type, **config, **(extra or {})}, f, indent=1)
    save_file({k: v.contiguous() for k, v in state_dict.items()}, os.path.join(folder, WEIGHTS_NAME))


def read_weights(path: str) -> Dict[str, "torch.Tensor"]:
    """A safetensors file's tensors; ValueError (one line) for a truncated or foreign file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(path)
    except SafetensorError as exc:
        raise ValueError(f"{path} is not a readable safetensors file: {exc}") from None


def stored_values(path: str) -> int:
    """How many values the tensors of a safetensors file hold, from its header alone."""
    import math

    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(path, "pt") as f:
            return sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())
    except SafetensorError as exc:
        raise ValueError(f"{path} is not a readable safetensors file: {exc}") from None


def check_model_size(build, weights_path: str, config_path: str) -> None:
    """Build the model ``build()`` returns on PyTorch's meta device (nothing allocated) and refuse,
    with one ValueError line, a config that asks for more parameters than ``weights_path`` holds
    (a typo or a hostile config.json would otherwise allocate hundreds of GB)."""
    import torch

    with torch.device("meta"):
        wanted = sum(p.numel() for p in build().parameters())
    held = stored_values(weights_path)
    if wanted > held:
        raise ValueError(f"{config_path} describes a model of {wanted:,} parameters but {weights_path} holds "
                         f"{held:,} values: config and weights do not belong together")


def load_model_folder(folder: str, config_cls, model_cls) -> "torch.nn.Module":
    """``model_cls(config)`` with the folder's weights, in eval mode. The config is ``config_cls``
    built from the fields of ``config.json`` it declares (the rest, e.g. the training record, is
    ignored). Before anything is allocated, the model is built on the meta device and its size
    compared with the weights file: a config asking for more parameters than the file holds (a
    typo, a hostile file) is refused instead of allocating hundreds of GB. Every user-fixable
    problem (missing file, bad JSON, missing or wrong field, truncated weights, weights of another
    shape) is a ValueError or OSError of one line."""
    import torch

    cfg_path, w_path = os.path.join(folder, CONFIG_NAME), os.path.join(folder, WEIGHTS_NAME)
    if not (os.path.isfile(cfg_path) and os.path.isfile(w_path)):
        raise FileNotFoundError(f"{folder} needs {CONFIG_NAME} and {WEIGHTS_NAME}")
    try:
        with open(cfg_path) as f:
            raw = json.load(f)
        fields = config_cls.__dataclass_fields__
        config = config_cls(**{k: v for k, v in raw.items() if k in fields})
        with torch.device("meta"):
            model_cls(config)
    except (TypeError, ValueError, KeyError, IndexError, RuntimeError) as exc:
        raise ValueError(f"{cfg_path}: not a valid {config_cls.__name__}: {' '.join(str(exc).split())}") from None
    check_model_size(lambda: model_cls(config), w_path, cfg_path)
    model = model_cls(config)
    try:
        model.load_state_dict(read_weights(w_path))
    except RuntimeError as exc:
        raise ValueError(f"{w_path} does not fit {cfg_path}: {' '.join(str(exc).split())[:300]}") from None
    return model.eval()
