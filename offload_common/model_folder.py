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


def load_model_folder(folder: str, config_cls, model_cls) -> "torch.nn.Module":
    """``model_cls(config)`` with the folder's weights, in eval mode. The config is ``config_cls``
    built from the fields of ``config.json`` it declares (the rest, e.g. the training record, is
    ignored)."""
    from safetensors.torch import load_file

    cfg_path, w_path = os.path.join(folder, CONFIG_NAME), os.path.join(folder, WEIGHTS_NAME)
    if not (os.path.isfile(cfg_path) and os.path.isfile(w_path)):
        raise FileNotFoundError(f"{folder} needs {CONFIG_NAME} and {WEIGHTS_NAME}")
    with open(cfg_path) as f:
        raw = json.load(f)
    fields = config_cls.__dataclass_fields__
    model = model_cls(config_cls(**{k: v for k, v in raw.items() if k in fields}))
    model.load_state_dict(load_file(w_path))
    return model.eval()
