"""Device names are checked before any model moves (a clear ValueError, not torch's assertion on
the first frame), and stage times wait for queued GPU work."""
import pytest
import torch

from offload_common.torch_device import resolve_device, stage_time


def test_cpu_and_empty_name_are_the_cpu():
    assert resolve_device("") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")


@pytest.mark.parametrize("name, match", [("gpu", "unknown device"), ("cuda:x", "unknown device"),
                                         ("meta", "unsupported device"), ("mps", "unsupported device")])
def test_names_that_are_not_cpu_or_cuda_are_refused(name, match):
    with pytest.raises(ValueError, match=match):
        resolve_device(name)


def test_cuda_without_cuda_says_so(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="CUDA is not available to this PyTorch"):
        resolve_device("cuda")


def test_cuda_index_must_exist(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
    assert resolve_device("cuda") == torch.device("cuda")
    with pytest.raises(ValueError, match=r"1 CUDA device\(s\)"):
        resolve_device("cuda:1")


def test_stage_time_waits_for_cuda_work_only(monkeypatch):
    """The clock is read after the wait for queued CUDA work, never before it (a time read first
    would charge the kernels to whichever later stage reads a result back)."""
    import time

    events = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: events.append(("sync", device)))
    monkeypatch.setattr(time, "perf_counter", lambda: events.append(("clock", None)) or 42.0)
    assert stage_time("cpu") == 42.0 and events == [("clock", None)]
    events.clear()
    assert stage_time(torch.device("cuda", 0)) == 42.0
    assert events == [("sync", torch.device("cuda", 0)), ("clock", None)]


@pytest.mark.parametrize("module, cls, model_param", [
    ("how2compress_ros.nodes.edge_node", "How2CompressEdgeNode", "model_path"),
    ("approxbit_ros.nodes.edge_node", "ApproxBitEdgeNode", "backbone_path"),
    ("approxbit_ros.nodes.server_node", "ApproxBitServerNode", "backbone_path")])
def test_nodes_refuse_an_unusable_device_before_loading_models(module, cls, model_param, rclpy_context, monkeypatch):
    """A node asked for CUDA where there is none stops at start-up with the reason, before it
    reads its (here missing) model files."""
    import importlib

    from rclpy.parameter import Parameter

    node_class = getattr(importlib.import_module(module), cls)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="CUDA is not available"):
        node_class(context=rclpy_context, parameter_overrides=[
            Parameter("device", value="cuda"), Parameter(model_param, value="/nonexistent/model")])
