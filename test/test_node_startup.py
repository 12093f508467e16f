"""Starting nodes: every node starts with its declared defaults alone (``ros2 run edge_offload
<node>`` without a YAML file), a value given for a parameter a node does not have is reported
with the closest name instead of being ignored silently, and a node that cannot start as
configured exits with one ``[FATAL]`` line while a bug keeps its traceback."""
import importlib
import inspect
import os

import pytest

rclpy = pytest.importorskip("rclpy")
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from offload_common.nodes.params import parameter_names, unknown_overrides  # noqa: E402
from offload_common.nodes.runner import run_node  # noqa: E402
from test_packaging import NODES  # noqa: E402


def node_class(entry_point: str):
    module = importlib.import_module(entry_point.split(":")[0])
    classes = [c for _, c in inspect.getmembers(module, inspect.isclass)
               if issubclass(c, Node) and c.__module__ == module.__name__]
    assert len(classes) == 1, f"{module.__name__} should define one node class, has {classes}"
    return module, classes[0]


@pytest.mark.parametrize("name", sorted(NODES))
def test_every_node_starts_with_its_defaults_alone(name, rclpy_context, monkeypatch, tmp_path):
    # relative defaults resolve as in an installed package's share folder; outputs land in tmp_path
    os.symlink(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models"),
               tmp_path / "models")
    monkeypatch.chdir(tmp_path)
    module, cls = node_class(NODES[name])
    node = cls(context=rclpy_context)
    try:
        assert node.get_name() == name
        declared = set(node.list_parameters([], 0).names)
        assert parameter_names(module.PARAMETERS) <= declared
        assert unknown_overrides(node) == []
    finally:
        node.destroy_node()


def test_a_parameter_the_node_does_not_have_is_reported_with_the_closest_name(rclpy_context):
    _, cls = node_class(NODES["link_echo"])
    node = cls(context=rclpy_context, parameter_overrides=[
        Parameter("max_probe_byte", value=10), Parameter("zzzz", value=1), Parameter("max_probe_bytes", value=500)])
    try:
        lines = unknown_overrides(node)
        assert len(lines) == 2
        assert "'max_probe_byte'" in lines[0] and "did you mean 'max_probe_bytes'?" in lines[0]
        assert "'zzzz'" in lines[1] and "did you mean" not in lines[1]
        assert node.get_parameter("max_probe_bytes").value == 500
    finally:
        node.destroy_node()


class Misconfigured(Node):
    def __init__(self):
        super().__init__("misconfigured")
        raise ValueError("level_qps needs 5 values")


class Buggy(Node):
    def __init__(self):
        super().__init__("buggy")
        raise ZeroDivisionError("a bug")


def test_a_misconfigured_node_exits_with_one_fatal_line(capfd):
    assert run_node(Misconfigured, args=[]) == 1
    err = capfd.readouterr().err
    assert err.strip() == "[FATAL] ValueError: level_qps needs 5 values"


def test_a_bug_at_start_up_keeps_its_traceback(capfd):
    assert run_node(Buggy, args=[]) == 1
    err = capfd.readouterr().err
    assert "Traceback" in err and "raise ZeroDivisionError" in err
    assert err.strip().endswith("[FATAL] ZeroDivisionError: a bug")


# Parameters a node takes at run time (``ros2 param set``), each with a test that the change takes
# effect or is refused with its reason; every other parameter is read-only, so a change the node
# would not act on is refused instead of reported as done.
WRITABLE = {
    ("camera_source", "rate_hz"): "test_nodes_camera.py",
    ("link_monitor", "sla_kind"): "test_link_monitor_nodes.py",
    ("link_monitor", "sla_latency_ms"): "test_link_monitor_nodes.py",
    ("link_monitor", "sla_accuracy"): "test_link_monitor_nodes.py",
    ("h2c_edge", "config_id"): "test_config_switch.py",
    ("approxbit_edge", "config_id"): "test_config_switch.py",
    ("approxbit_edge", "vqa_question"): "test_vqa_question_param.py",
    ("approxbit_server", "vqa_question"): "test_vqa_question_param.py",
}


def test_only_parameters_the_nodes_act_on_are_writable():
    writable = {(name, spec.name) for name, entry in NODES.items()
                for spec in node_class(entry)[0].PARAMETERS if not spec.read_only}
    assert writable == set(WRITABLE)


def test_a_camera_source_that_cannot_open_is_one_fatal_line(capfd, tmp_path):
    from offload_common.nodes.camera_source import CameraSourceNode

    missing = str(tmp_path / "missing.mp4")
    assert run_node(CameraSourceNode, args=["camera_source", "--ros-args", "-p", "source:=video",
                                            "-p", f"uri:={missing}"]) == 1
    err = capfd.readouterr().err.strip()
    assert err.startswith("[FATAL] FrameSourceError: ") and missing in err and "Traceback" not in err
