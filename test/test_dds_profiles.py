"""Fast DDS profiles reach every Fast DDS version: 3.x (Kilted and newer) reads
FASTDDS_DEFAULT_PROFILES_FILE, 2.x (Humble, Jazzy) only FASTRTPS_DEFAULT_PROFILES_FILE, so the
project sets both; the thin-link profiles spell the writer heartbeat period as each version's
schema does (bench/bench_dds_outage_recovery.py measures what it changes)."""
import os
import subprocess
import xml.etree.ElementTree as ET

import pytest

from offload_common.process_graph import DDS_PROFILE_VARIABLES, use_dds_profile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NS = "{http://www.eprosima.com}"


def test_use_dds_profile_sets_and_clears_both_variables():
    env = use_dds_profile({"OTHER": "1"}, "/x/profile.xml")
    assert {env[v] for v in DDS_PROFILE_VARIABLES} == {"/x/profile.xml"} and len(DDS_PROFILE_VARIABLES) == 2
    assert use_dds_profile(env, None) == {"OTHER": "1"}


@pytest.mark.skipif(not os.path.exists(os.path.join(ROOT, "install", "setup.sh")), reason="run 'make setup' first")
def test_ros_env_gives_both_fast_dds_versions_the_localhost_profile():
    env = {k: v for k, v in os.environ.items() if k not in DDS_PROFILE_VARIABLES and k != "EDGE_OFFLOAD_DISCOVERY_RANGE"}
    out = subprocess.run([os.path.join(ROOT, "tools", "ros_env.sh"), "env"], env=env, capture_output=True,
                         text=True, check=True).stdout
    values = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    assert [values.get(v) for v in DDS_PROFILE_VARIABLES] == [os.path.join(ROOT, "config", "fastdds_localhost.xml")] * 2


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
