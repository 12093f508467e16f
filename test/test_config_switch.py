"""Switching an edge node's configuration by hand (``ros2 param set <node> config_id <id>``) and
by the monitor's decisions goes through one path: known ids switch, unknown ones are refused with
the reason and the active configuration stays, and the parameter shows what is in use."""
import pytest

import rclpy  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from edge_offload.msg import OffloadConfig  # noqa: E402
from how2compress_ros.nodes.edge_node import How2CompressEdgeNode  # noqa: E402


@pytest.fixture
def edge(rclpy_context):
    node = How2CompressEdgeNode(context=rclpy_context, parameter_overrides=[
        Parameter("model_path", value=""), Parameter("config_id", value="uniform/qp40"),
        Parameter("edge_detector", value=""), Parameter("stream_id", value="cam0")])
    yield node
    node.destroy_node()


def set_config_id(node, value):
    result, = node.set_parameters([Parameter("config_id", value=value)])
    return result


def decision(config_id, stream_id="cam0"):
    msg = OffloadConfig()
    msg.stream_id, msg.config_id, msg.reason = stream_id, config_id, "test"
    return msg


def test_a_parameter_change_switches_the_running_configuration(edge):
    assert set_config_id(edge, "uniform/qp30").successful
    assert edge.edge.config.config_id == "uniform/qp30" and edge.edge.config.level_qps == (30,)
    assert set_config_id(edge, "edge_only").successful
    assert edge.edge.config.config_id == "edge_only"


@pytest.mark.parametrize("bad, why", [("h2c/base40", "needs an EA model"), ("bogus", "bogus")])
def test_an_id_the_node_cannot_serve_is_refused_with_the_reason(edge, bad, why):
    result = set_config_id(edge, bad)
    assert not result.successful and why in result.reason
    assert edge.edge.config.config_id == "uniform/qp40"
    assert edge.get_parameter("config_id").value == "uniform/qp40"
    assert edge.switch.refused == 1


def test_a_monitor_decision_switches_and_shows_in_the_parameter(edge):
    edge.switch.on_decision(decision("uniform/qp28"))
    assert edge.edge.config.config_id == "uniform/qp28"
    assert edge.get_parameter("config_id").value == "uniform/qp28"
    edge.switch.on_decision(decision("uniform/qp20", stream_id="other"))     # not this stream
    edge.switch.on_decision(decision("h2c/base30"))                          # no EA model: ignored
    assert edge.edge.config.config_id == "uniform/qp28"
    assert edge.get_parameter("config_id").value == "uniform/qp28"
    assert edge.switch.refused == 1


def test_the_approxbit_edge_switches_by_parameter_too(rclpy_context, monkeypatch):
    import os

    from approxbit_ros.nodes.edge_node import ApproxBitEdgeNode

    monkeypatch.chdir(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    node = ApproxBitEdgeNode(context=rclpy_context)
    try:
        first = node.edge.config_id
        other = next(c for c in node.configs.ids if c != first)
        result, = node.set_parameters([Parameter("config_id", value=other)])
        assert result.successful and node.edge.config_id == other
        result, = node.set_parameters([Parameter("config_id", value="cnn3d/o9/enc/k4")])
        assert not result.successful and "cnn3d/o9/enc/k4" in result.reason and node.edge.config_id == other
    finally:
        node.destroy_node()
