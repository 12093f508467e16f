"""The processes the project starts keep DDS discovery where it means to under every ROS 2
distro: Humble ignores ROS_AUTOMATIC_DISCOVERY_RANGE and reads ROS_LOCALHOST_ONLY instead."""
from offload_common.netns_link import EmulatedLink
from offload_common.process_graph import ProcessGraph, scope_discovery


def test_humble_processes_get_localhost_only_by_default():
    graph = ProcessGraph([], env={"ROS_DISTRO": "humble"})
    assert graph.env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    assert graph.env["ROS_LOCALHOST_ONLY"] == "1"


def test_namespace_nodes_discover_over_the_subnet_even_if_the_shell_exported_localhost_only():
    env = EmulatedLink.dds_env({"ROS_DISTRO": "humble", "ROS_LOCALHOST_ONLY": "1",
                             "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"})
    assert env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "SUBNET"
    assert env["ROS_LOCALHOST_ONLY"] == "0"


def test_newer_distros_get_only_the_range_variable():
    for distro in ("jazzy", "kilted", None):
        env = {} if distro is None else {"ROS_DISTRO": distro}
        scope_discovery(env)
        assert env.get("ROS_AUTOMATIC_DISCOVERY_RANGE") == "LOCALHOST"
        assert "ROS_LOCALHOST_ONLY" not in env


def test_a_range_the_caller_chose_is_kept():
    env = scope_discovery({"ROS_DISTRO": "humble", "ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET"})
    assert env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "SUBNET"
    assert env["ROS_LOCALHOST_ONLY"] == "0"
