"""ONNX Runtime for any of the package's torch models: export once (cached on disk), run with the
execution providers the machine has — ``CPUExecutionProvider`` here (and in CI, which checks every
graph against torch), ``CUDAExecutionProvider`` / ``TensorrtExecutionProvider`` with
onnxruntime-gpu on a Jetson, where TensorRT gets FP16 and an engine cache by option.

An exported graph is keyed by the module's class, its weights (SHA-256 of every parameter and
buffer), the example inputs' shapes and dtypes, the opset and the torch version, so a changed
model, frame size or exporter never reuses a stale file, and a node's second start does not
export again. Plain Python (torch, onnxruntime); every method's runtime wrappers build on this.
"""
from __future__ import annotations

import hashlib
import io
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

OPSET = 17
DEFAULT_PROVIDERS = ("CPUExecutionProvider",)
RUNTIMES = ("torch", "onnxruntime")


@dataclass
class OnnxSettings:
    providers: Sequence[str] = DEFAULT_PROVIDERS     # in order of preference
    threads: int = 1                                 # intra-op threads (CPU provider)
    cache_dir: str = ""                              # exported graphs (empty: export in memory each start)
    trt_fp16: bool = False                           # TensorRT provider: FP16 kernels
    trt_engine_cache: str = ""                       # TensorRT provider: engine cache folder
    spin: bool = False                               # let idle intra-op threads spin (lower latency, but they
                                                     # burn the CPU the node's neighbours need on a small edge)
    extra: dict = field(default_factory=dict)        # provider name -> more provider options


def check_providers(providers: Sequence[str]) -> list:
    """``providers`` if this onnxruntime has them all, else ``ValueError`` naming what it has."""
    import onnxruntime as ort

    have = ort.get_available_providers()
    missing = [p for p in providers if p not in have]
    if not providers or missing:
        raise ValueError(f"ONNX Runtime providers {missing or list(providers)} not available; this onnxruntime "
                         f"has {', '.join(have)} (onnxruntime-gpu brings CUDA / TensorRT)")
    return list(providers)


def provider_options(settings: OnnxSettings) -> List[Tuple[str, dict]]:
    """(provider, options) in order, TensorRT's FP16 / engine cache from ``settings``."""
    out = []
    for name in check_providers(settings.providers):
        opts = dict(settings.extra.get(name, {}))
        if name == "TensorrtExecutionProvider":
            if settings.trt_fp16:
                opts["trt_fp16_enable"] = True
            if settings.trt_engine_cache:
                os.makedirs(settings.trt_engine_cache, exist_ok=True)
                opts.update(trt_engine_cache_enable=True, trt_engine_cache_path=settings.trt_engine_cache)
        out.append((name, opts))
    return out


def _as_tuple(examples) -> tuple:
    return tuple(examples) if isinstance(examples, (list, tuple)) else (examples,)


def model_key(module: nn.Module, examples, opset: int = OPSET, extra: str = "") -> str:
    """What an exported graph depends on, hashed: class, weights, input shapes / dtypes, opset,
    torch version, and ``extra`` (what the weights are when they are not the module's own state:
    a graph file's hash)."""
    h = hashlib.sha256()
    h.update(f"{type(module).__module__}.{type(module).__qualname__}|{opset}|{torch.__version__}|{extra}".encode())
    for x in _as_tuple(examples):
        h.update(f"|{tuple(x.shape)}:{x.dtype}".encode())
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().to("cpu").contiguous().numpy().tobytes() if t.dtype != torch.bfloat16
                 else t.detach().float().numpy().tobytes())
    return h.hexdigest()


def export_onnx(module: nn.Module, examples, input_names: Sequence[str] = ("input",),
                output_names: Sequence[str] = ("output",), opset: int = OPSET) -> bytes:
    """``module`` as an ONNX model (bytes), traced at the examples' shapes (TorchScript exporter:
    no onnxscript needed, the same on every torch the project supports)."""
    buf = io.BytesIO()
    # grad enabled: nn.MultiheadAttention takes its fused inference path (no ONNX symbolic) when it is off
    with warnings.catch_warnings(), torch.enable_grad():
        warnings.simplefilter("ignore")            # the TorchScript exporter's deprecation and tracer notices
        torch.onnx.export(module.eval(), _as_tuple(examples), buf, dynamo=False, opset_version=opset,
                          input_names=list(input_names), output_names=list(output_names))
    return buf.getvalue()


def cached_export(module: nn.Module, examples, name: str, cache_dir: str = "", key_extra: str = "",
                  **kwargs) -> bytes:
    """``export_onnx``, read from / written to ``cache_dir/<name>-<key>.onnx`` when a folder is given."""
    if not cache_dir:
        return export_onnx(module, examples, **kwargs)
    key = model_key(module, examples, kwargs.get("opset", OPSET), key_extra)
    path = os.path.join(cache_dir, f"{name}-{key[:20]}.onnx")
    if os.path.isfile(path):
        with open(path, "rb") as f:
            return f.read()
    model = export_onnx(module, examples, **kwargs)
    os.makedirs(cache_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".part")     # atomic: a crash leaves no half file
    with os.fdopen(fd, "wb") as f:
        f.write(model)
    os.replace(tmp, path)
    return model


class OnnxModule:
    """One torch module as an ONNX Runtime session: ``module(*examples)`` ≈ ``OnnxModule(...)(*arrays)``."""

    def __init__(self, module: nn.Module, examples, settings: Optional[OnnxSettings] = None, name: str = "model",
                 input_names: Optional[Sequence[str]] = None, output_names: Sequence[str] = ("output",),
                 opset: int = OPSET, key_extra: str = ""):
        import onnxruntime as ort

        settings = settings or OnnxSettings()
        examples = _as_tuple(examples)
        if any(p.device.type != "cpu" for p in module.parameters()):
            raise ValueError(f"{name}: export from a module on the CPU; ONNX Runtime's providers pick the GPU")
        self.input_names = list(input_names or [f"input{i}" if len(examples) > 1 else "input"
                                                for i in range(len(examples))])
        self.output_names = list(output_names)
        model = cached_export(module, examples, name, settings.cache_dir, input_names=self.input_names,
                              output_names=self.output_names, opset=opset, key_extra=key_extra)
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, settings.threads)
        options.log_severity_level = 3
        if not settings.spin:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(model, options, providers=provider_options(settings))
        self.providers = self.session.get_providers()

    def __call__(self, *arrays: np.ndarray) -> List[np.ndarray]:
        return self.session.run(None, dict(zip(self.input_names, arrays)))
