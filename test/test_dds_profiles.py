"""Fast DDS profiles reach every Fast DDS version: 3.x (Kilted and newer) reads
FASTDDS_DEFAULT_PROFILES_FILE (and warns at every node start if the 2.x variable is set), 2.x
(Humble, Jazzy) only FASTRTPS_DEFAULT_PROFILES_FILE, so the project sets the one its Fast DDS
reads; the thin-link profiles spell the writer heartbeat period as each version's
schema does (bench/bench_dds_outage_recovery.py measures what it changes)."""
import os
import subprocess
import xml.etree.ElementTree as ET

import pytest

from offload_common.process_graph import DDS_PROFILE_VARIABLES, dds_profile_variable, use_dds_profile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NS = "{http://www.eprosima.com}"


def test_the_profile_variable_follows_the_fast_dds_version(tmp_path):
    fast_dds_2 = tmp_path / "jazzy"
    (fast_dds_2 / "lib").mkdir(parents=True)
    (fast_dds_2 / "lib" / "libfastrtps.so").touch()
    assert dds_profile_variable({}, str(fast_dds_2)) == "FASTRTPS_DEFAULT_PROFILES_FILE"
    assert dds_profile_variable({}, str(tmp_path)) == "FASTDDS_DEFAULT_PROFILES_FILE"
    assert dds_profile_variable({"ROS_DISTRO": "humble"}, str(tmp_path)) == "FASTRTPS_DEFAULT_PROFILES_FILE"
    assert dds_profile_variable({"ROS_DISTRO": "kilted"}, str(fast_dds_2)) == "FASTDDS_DEFAULT_PROFILES_FILE"


def test_use_dds_profile_sets_only_the_variable_this_fast_dds_reads():
    env = use_dds_profile({"OTHER": "1", "FASTRTPS_DEFAULT_PROFILES_FILE": "/old.xml",
                           "FASTDDS_DEFAULT_PROFILES_FILE": "/old.xml"}, "/x/profile.xml")
    assert env == {"OTHER": "1", dds_profile_variable(env): "/x/profile.xml"}
    assert use_dds_profile(env, None) == {"OTHER": "1"}


@pytest.mark.skipif(not os.path.exists(os.path.join(ROOT, "install", "setup.sh")), reason="run 'make setup' first")
def test_ros_env_gives_this_fast_dds_the_localhost_profile_and_no_deprecation_warning():
    env = {k: v for k, v in os.environ.items() if k not in DDS_PROFILE_VARIABLES and k != "EDGE_OFFLOAD_DISCOVERY_RANGE"}
    out = subprocess.run([os.path.join(ROOT, "tools", "ros_env.sh"), "env"], env=env, capture_output=True,
                         text=True, check=True).stdout
    values = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    wanted = dds_profile_variable(values, os.path.join(ROOT, ".venv"))
    assert {v: values.get(v) for v in DDS_PROFILE_VARIABLES} == {
        v: os.path.join(ROOT, "config", "fastdds_localhost.xml") if v == wanted else None
        for v in DDS_PROFILE_VARIABLES}


@pytest.mark.parametrize("name, element", [("fastdds_thin_link.xml", "heartbeat_period"),
                                           ("fastdds2_thin_link.xml", "heartbeatPeriod")])
def test_thin_link_profiles_set_a_100_ms_writer_heartbeat(name, element):
    root = ET.parse(os.path.join(ROOT, "config", name)).getroot()
    writer = root.find(f"{NS}profiles/{NS}data_writer")
    assert writer is not None and writer.get("is_default_profile") == "true"
    period = writer.find(f"{NS}times/{NS}{element}")
    assert period is not None, f"{name}: no times/{element}"
    assert int(period.find(f"{NS}sec").text) * 1e9 + int(period.find(f"{NS}nanosec").text) == 100e6
    assert root.find(f"{NS}profiles/{NS}participant") is None        # discovery and transports untouched


def test_fast_dds_reads_and_parses_the_profile_the_variable_names(tmp_path):
    """Setting the variable is not enough to know the profile loads: Fast DDS must read the file it
    names (a malformed file there makes it report an XML parser error naming the file) and parse
    ours without one. Both checked in a child process creating a node."""
    import subprocess
    import sys

    from offload_common.process_graph import dds_profile_variable

    bad = tmp_path / "broken.xml"
    bad.write_text('<?xml version="1.0"?>\n<dds><profiles><participant profile_name="x"><rtps><broken')
    code = "import rclpy; rclpy.init(); n = rclpy.create_node('profile_probe'); n.destroy_node(); print('node ok')"
    var = dds_profile_variable()
    outputs = {}
    for name, path in (("broken", str(bad)), ("ours", os.path.join(ROOT, "config", "fastdds_localhost.xml"))):
        env = {**os.environ, var: path, "RCUTILS_COLORIZED_OUTPUT": "0"}
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
        assert "node ok" in proc.stdout, proc.stderr
        outputs[name] = proc.stdout + proc.stderr
    assert "XMLPARSER" in outputs["broken"] and str(bad) in outputs["broken"]
    assert "XMLPARSER" not in outputs["ours"] and "Error" not in outputs["ours"]
