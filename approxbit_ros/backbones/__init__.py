"""Split-able video backbones: ``edge(x, o)`` runs up to offload point o, ``server(h, o)`` the
rest. Offload point o = number of blocks run on the edge."""


def blank_input(backbone, frames: int = 16, size: int = 64, device="cpu"):
    """The backbone's model input for one all-black uint8 clip (shape probes, FLOP counts, warm-up)."""
    import torch

    return backbone.preprocess(torch.zeros(1, frames, size, size, 3, dtype=torch.uint8, device=device))
