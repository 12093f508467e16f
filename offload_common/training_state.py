"""Resumable training state shared by the training loops: module, optimizer and scheduler
states, epoch, JSON history and any extra tensors / strings, in one ``torch.save`` file that is
read back with ``torch.load(weights_only=True)`` (no pickled code)."""
from __future__ import annotations

import json
import os
from typing import Dict, List, Optional, Tuple

import torch


def save_training_state(path: str, *, modules: Dict[str, torch.nn.Module], optimizer, epoch: int,
                        history: List[dict], scheduler=None, **extra) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    state = {f"module.{name}": m.state_dict() for name, m in modules.items()}
    state.update(optimizer=optimizer.state_dict(), epoch=int(epoch), history=json.dumps(history),
                 torch_rng=torch.get_rng_state(), **extra)
    if scheduler is not None:
        state["scheduler"] = scheduler.state_dict()
    torch.save(state, path)


def load_training_state(path: str, *, modules: Dict[str, torch.nn.Module], optimizer,
                        scheduler=None) -> Tuple[int, List[dict], dict]:
    """Restore modules / optimizer / scheduler / torch RNG; returns (epoch, history, state) so
    callers can read their extra entries."""
    state = torch.load(path, weights_only=True)
    for name, m in modules.items():
        m.load_state_dict(state[f"module.{name}"])
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    return int(state["epoch"]), json.loads(state["history"]), state


def has_training_state(path: Optional[str]) -> bool:
    return bool(path) and os.path.isfile(path)
