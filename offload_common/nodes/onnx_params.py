"""The parameters every node with a model shares for choosing its runtime: ``runtime`` (torch or
onnxruntime) and ONNX Runtime's execution providers, export cache and TensorRT options
(``offload_common/onnx_runtime.py``)."""
from __future__ import annotations

import os
from typing import Optional

from offload_common.nodes.params import Param
from offload_common.onnx_runtime import DEFAULT_PROVIDERS, RUNTIMES, OnnxSettings

RUNTIME_PARAMETER = Param("runtime", "torch", f"what runs the models: {' or '.join(RUNTIMES)} (exported from the "
                          "torch models at start-up; device must then be cpu, onnx_providers pick the hardware)",
                          read_only=True)

ONNX_PARAMETERS = (
    Param("onnx_providers", list(DEFAULT_PROVIDERS), "ONNX Runtime execution providers in order of preference "
          "(e.g. TensorrtExecutionProvider, CUDAExecutionProvider, CPUExecutionProvider)", read_only=True),
    Param("onnx_cache_dir", "~/.cache/edge_offload/onnx", "folder for the exported ONNX graphs, keyed by the model's "
          "weights, input shape, opset and torch version, so a restart does not export again (empty: export in "
          "memory at every start)", read_only=True),
    Param("trt_fp16", False, "TensorRT provider: allow FP16 kernels", read_only=True),
    Param("trt_engine_cache", "", "TensorRT provider: folder for built engines (empty: rebuild at every start)",
          read_only=True),
)


def onnx_settings(p, runtime: str, threads: int, parameter: str = "runtime") -> Optional[OnnxSettings]:
    """The node's ``OnnxSettings`` when ``runtime`` is onnxruntime, None for torch; ValueError
    (one line at start-up) for an unknown runtime or providers this onnxruntime lacks."""
    if runtime not in RUNTIMES:
        raise ValueError(f"{parameter} {runtime!r}: expected one of {', '.join(RUNTIMES)}")
    if runtime == "torch":
        return None
    from offload_common.onnx_runtime import check_providers

    check_providers(list(p.onnx_providers))
    cache = os.path.expanduser(p.onnx_cache_dir) if p.onnx_cache_dir else ""
    return OnnxSettings(tuple(p.onnx_providers), threads, cache, bool(p.trt_fp16), p.trt_engine_cache)
