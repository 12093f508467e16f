"""Starting nodes: every node starts with its declared defaults alone (``ros2 run edge_offload
<node>`` without a YAML file), a value given for a parameter a node does not have is reported
with the closest name instead of being ignored silently, and a node that cannot start as
configured exits with one ``[FATAL]`` line while a bug keeps its traceback."""
import importlib
import inspect
import os

import pytest

import rclpy  # noqa: E402
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


def _broken_copy(tmp_path, src: str, name: str, edit) -> str:
    import json
    import shutil

    dst = tmp_path / name
    shutil.copytree(src, dst)
    edit(dst, json)
    return str(dst)


def _truncate_weights(d, _json):
    data = (d / "model.safetensors").read_bytes()
    (d / "model.safetensors").write_bytes(data[: len(data) // 2])


def _edit_config(**changes):
    def edit(d, json):
        cfg = json.loads((d / "config.json").read_text())
        for k, v in changes.items():
            if v is None:
                cfg.pop(k)
            else:
                cfg[k] = v
        (d / "config.json").write_text(json.dumps(cfg))
    return edit


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CNN3D = os.path.join(ROOT, "models", "approxbit", "cnn3d-actions")
EA = os.path.join(ROOT, "models", "how2compress", "ea-mobilevitv2-050-d2-vtest-bikes")
VIDEOMAE = os.path.join(ROOT, "models", "approxbit", "videomae-actions")


def _startup_cases(tmp_path):
    """(name, executable, ros args, text the FATAL line must hold) for every start-up error a user
    can make that issue 26 listed; files are made in ``tmp_path``."""
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(bytes(range(256)) * 20)
    (tmp_path / "nobag").mkdir()
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("approxbit_server:\n  ros__parameters:\n    topk: [5\n")
    open_key = tmp_path / "open.key"
    open_key.write_text("k1 " + "ab" * 32 + "\n")
    os.chmod(open_key, 0o644)
    return [
        ("empty video", "camera_source", ["-p", "source:=video", "-p", f"uri:={empty}"], "cannot open video"),
        ("corrupt video", "camera_source", ["-p", "source:=video", "-p", f"uri:={corrupt}"], "cannot open video"),
        ("folder with no bag", "camera_source", ["-p", "source:=bag", "-p", f"uri:={tmp_path / 'nobag'}"],
         "cannot open bag"),
        ("rate 0", "camera_source", ["-p", "rate_hz:=0.0"], "rate_hz"),
        ("negative width", "camera_source", ["-p", "width:=-5"], "width"),
        ("malformed params file", "link_echo", ["--params-file", str(bad_yaml)], "params file"),
        ("truncated safetensors", "approxbit_server",
         ["-p", f"backbone_path:={_broken_copy(tmp_path, CNN3D, 'trunc', _truncate_weights)}"],
         "not a readable safetensors file"),
        ("config.json missing a field", "approxbit_server",
         ["-p", f"backbone_path:={_broken_copy(tmp_path, CNN3D, 'nofield', _edit_config(model_type=None))}"],
         "unknown backbone model_type None"),
        ("config.json that does not fit the weights", "h2c_edge",
         ["-p", f"model_path:={_broken_copy(tmp_path, EA, 'levels3', _edit_config(levels=3))}"],
         "does not fit"),
        ("config.json with a malformed field", "approxbit_server",
         ["-p", f"backbone_path:={_broken_copy(tmp_path, CNN3D, 'badfield', _edit_config(blocks=[[16, 2]]))}"],
         "not a valid Cnn3dConfig"),
        ("absurd model size", "approxbit_server",
         ["-p", f"backbone_path:={_broken_copy(tmp_path, CNN3D, 'huge', _edit_config(stem_channels=10**7))}"],
         "config and weights do not belong together"),
        ("absurd VideoMAE size", "approxbit_server",
         ["-p", f"backbone_path:={_broken_copy(tmp_path, VIDEOMAE, 'vmhuge', _edit_config(hidden_size=384000))}"],
         "config and weights do not belong together"),
        ("absurd EA model size", "h2c_edge",
         ["-p", f"model_path:={_broken_copy(tmp_path, EA, 'eahuge', _edit_config(width_multiplier=400.0))}"],
         "config and weights do not belong together"),
        ("NaN SLA", "link_monitor", ["-p", "sla_latency_ms:=.nan"], "sla_latency_ms"),
        ("NaN ewma_alpha", "link_monitor", ["-p", "ewma_alpha:=.nan"], "ewma_alpha"),
        ("ewma_alpha 5", "link_monitor", ["-p", "ewma_alpha:=5.0"], "ewma_alpha"),
        ("NaN loss_timeout_s", "link_monitor", ["-p", "loss_timeout_s:=.nan"], "loss_timeout_s"),
        ("negative edge_scale", "link_monitor", ["-p", "edge_scale:=-1.0"], "edge_scale"),
        ("zero decision period", "link_monitor", ["-p", "decision_period_s:=0.0"], "decision_period_s"),
        ("zero default bandwidth", "link_monitor", ["-p", "default_bandwidth_mbps:=0.0"], "default_bandwidth_mbps"),
        ("negative probe period", "link_monitor", ["-p", "probe_period_s:=-0.2"], "probe_period_s"),
        ("negative probe size", "link_monitor", ["-p", "capacity_probe_bytes:=-1"], "capacity_probe_bytes"),
        ("negative max_probe_bytes", "link_echo", ["-p", "max_probe_bytes:=-1"], "max_probe_bytes"),
        ("key file others can read", "approxbit_server", ["-p", f"auth_key_file:={open_key}"], "chmod 600"),
        ("zero max_streams", "h2c_server", ["-p", "max_streams:=0"], "max_streams"),
    ]


def test_every_user_fixable_start_up_error_is_one_fatal_line(tmp_path):
    import subprocess

    failures = []
    for name, exe, args, expected in _startup_cases(tmp_path):
        try:
            proc = subprocess.run([exe, "--ros-args", *args], capture_output=True, text=True, timeout=60, cwd=ROOT)
        except subprocess.TimeoutExpired:
            failures.append(f"{name}: still running after 60 s (started as if nothing were wrong)")
            continue
        fatal = [line for line in proc.stderr.splitlines() if line.startswith("[FATAL]")]
        if proc.returncode != 1 or len(fatal) != 1 or "Traceback" in proc.stderr or expected not in fatal[0]:
            failures.append(f"{name}: exit {proc.returncode}, stderr: {proc.stderr[-600:]}")
    assert not failures, "\n".join(failures)
