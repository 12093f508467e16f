"""Device names for the PyTorch models, checked before any model moves: ``cpu``, ``cuda`` or
``cuda:N``. A GPU that this PyTorch cannot use (a CPU-only build, no driver, an index past the
last GPU) is a clear ``ValueError`` at start-up, not an assertion from deep inside torch on the
first frame. Plain Python, no ROS."""
from __future__ import annotations


def resolve_device(name: str):
    """The ``torch.device`` called ``name`` (empty means ``cpu``), or ``ValueError`` saying why
    it cannot be used here."""
    import torch

    text = (name or "cpu").strip().lower()
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError) as exc:
        raise ValueError(f"unknown device {name!r}; expected cpu, cuda or cuda:N") from exc
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise ValueError(f"unsupported device {name!r}; expected cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        build = "built with CUDA" if torch.backends.cuda.is_built() else "a CPU-only build"
        raise ValueError(f"device {name!r}: CUDA is not available to this PyTorch ({torch.__version__}, "
                         f"{build}); on a Jetson install JetPack's torch wheel, or use device 'cpu'")
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise ValueError(f"device {name!r}: this machine has {count} CUDA device(s) (cuda:0..cuda:{count - 1})")
    return device


def stage_time(device) -> float:
    """``time.perf_counter()`` once the work queued on ``device`` has finished. CUDA kernels run
    asynchronously, so without the wait a stage's time would land on whichever later stage first
    reads a result back; on the CPU this is just the clock."""
    import time

    import torch

    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()
