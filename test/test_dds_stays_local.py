"""With the project's settings (ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST and the Fast DDS
localhost profile) two nodes exchange images without a single packet on a non-loopback
interface. Measured inside a private network namespace with a veth pair; the control run with
default discovery shows the probe does see DDS traffic when it exists."""
import os
import shutil
import subprocess
import uuid

import pytest

from offload_common.process_graph import NodeProcess, ProcessGraph, config_path, use_dds_profile

NEEDS = "root, iproute2 and network namespaces"


def _can_use_netns() -> bool:
    if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("camera_source") is None:
        return False
    name = f"eo_chk_{uuid.uuid4().hex[:6]}"
    ok = subprocess.run(["ip", "netns", "add", name], capture_output=True).returncode == 0
    if ok:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return ok


pytestmark = pytest.mark.skipif(not _can_use_netns(), reason=f"needs {NEEDS}")


@pytest.fixture
def netns_with_veth():
    ns = f"eo_local_{uuid.uuid4().hex[:6]}"

    def sh(*cmd):
        subprocess.run(["ip", "netns", "exec", ns, *cmd], check=True, capture_output=True)

    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        sh("ip", "link", "set", "lo", "up")
        sh("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
        sh("sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1")
        sh("ip", "link", "add", "eo0", "type", "veth", "peer", "name", "eo1")
        sh("ip", "addr", "add", "10.213.0.1/24", "dev", "eo0")
        sh("ip", "addr", "add", "10.213.0.2/24", "dev", "eo1")
        sh("ip", "link", "set", "eo0", "up")
        sh("ip", "link", "set", "eo1", "up")
        wait_until_up(ns)   # packets sent before carrier is up would be dropped uncounted
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def wait_until_up(ns, timeout=10.0):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = subprocess.run(["ip", "netns", "exec", ns, "cat", "/sys/class/net/eo0/operstate",
                                 "/sys/class/net/eo1/operstate"], capture_output=True, text=True).stdout.split()
        if states == ["up", "up"]:
            return
        time.sleep(0.1)
    raise AssertionError(f"veth pair in {ns} did not come up: {states}")


def veth_tx_packets(ns):
    out = subprocess.run(["ip", "netns", "exec", ns, "cat", "/sys/class/net/eo0/statistics/tx_packets",
                          "/sys/class/net/eo1/statistics/tx_packets"], check=True, capture_output=True, text=True)
    return sum(int(x) for x in out.stdout.split())


def run_camera_pair(ns, env):
    nodes = [
        NodeProcess("camera_source", "camera_source", config_path("camera_source.yaml"),
                    overrides={"width": 160, "height": 90, "rate_hz": 30.0}),
        NodeProcess("frame_counter", "frame_counter", config_path("frame_counter.yaml"),
                    overrides={"expected_frames": 20, "timeout_s": 30.0}),
    ]
    with ProcessGraph(nodes, echo=False, env=env, prefix=["ip", "netns", "exec", ns]) as graph:
        code = graph.wait("frame_counter", timeout=45)
        out = graph.output("frame_counter")
    assert code == 0, out


def test_no_dds_packet_leaves_loopback_with_project_settings(netns_with_veth):
    env = dict(os.environ)   # conftest set LOCALHOST and the localhost Fast DDS profile
    assert env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    before = veth_tx_packets(netns_with_veth)
    run_camera_pair(netns_with_veth, env)
    assert veth_tx_packets(netns_with_veth) - before == 0


def test_control_default_discovery_is_seen_on_the_veth(netns_with_veth):
    env = use_dds_profile(dict(os.environ), None)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "SUBNET"   # the ROS 2 default
    before = veth_tx_packets(netns_with_veth)
    run_camera_pair(netns_with_veth, env)
    assert veth_tx_packets(netns_with_veth) - before > 0
