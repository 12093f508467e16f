"""The monitor drives How2Compress over an emulated link: camera_source, h2c_edge and
link_monitor (det stream) in an 'edge' network namespace; h2c_server and link_echo in a 'server'
one, joined by a tbf-shaped veth pair. At 50 Mbit/s the monitor picks the accurate, large
setting; shaped to 3 Mbit/s it moves to the small one and the edge follows (the server decodes
whatever arrives: payloads are self-describing); a cut link makes the edge analyse on its own,
and offloading resumes when the link returns. No node crashes."""
import shutil
import time

import pytest

from footage import footage
from offload_common.lookup_table import LookupTable, LutEntry
from offload_common.netns_link import EmulatedLink, netns_available
from offload_common.process_graph import NodeProcess, ProcessGraph, config_path
from test_link_monitor_netns import wait_line

WHY = netns_available()
pytestmark = [pytest.mark.skipif(WHY is not None, reason=f"emulated links: {WHY}"),
              pytest.mark.skipif(shutil.which("h2c_edge") is None, reason="node entry points not installed")]


def test_monitor_switches_how2compress_settings_with_the_link(tmp_path):
    clip = footage("carphone_pristine.mp4")
    lut = str(tmp_path / "det_lut.json")
    # Eq. 1 with these sizes: qp28 ~35 ms at 50 Mbit/s but ~185 ms at 3; qp40 ~41 ms at 3
    LookupTable("det", "person detection", "f1", [
        LutEntry("uniform/qp28", "how2compress", 0.99, 60000, 0, 3, 20, 2),
        LutEntry("uniform/qp40", "how2compress", 0.90, 6000, 0, 3, 20, 2),
        LutEntry("edge_only", "edge_only", 1.0, 0, 900),
    ]).save(lut)
    with EmulatedLink(rate_mbps=50.0) as link:
        env = link.dds_env()
        server = ProcessGraph([
            NodeProcess("h2c_server", "h2c_server", config_path("h2c_server.yaml"),
                        overrides={"publish_decoded_image": False}),
            NodeProcess("link_echo", "link_echo", config_path("link_echo.yaml"))],
            echo=False, prefix=link.prefix("server"), env=env)
        edge = ProcessGraph([
            NodeProcess("camera_source", "camera_source", config_path("camera_source.yaml"),
                        overrides={"source": "video", "uri": clip, "rate_hz": 10.0, "width": 0, "height": 0}),
            NodeProcess("h2c_edge", "h2c_edge", config_path("h2c_edge.yaml"),
                        overrides={"model_path": "", "config_id": "uniform/qp40", "edge_detector": ""}),
            NodeProcess("link_monitor", "link_monitor", config_path("link_monitor.yaml"), overrides={
                "lookup_tables": lut, "stream_id": "det", "sla_latency_ms": 100.0, "log_period_s": 1.0,
                "calibrate_from_results": False, "min_dwell_s": 2.0})],
            echo=False, prefix=link.prefix("edge"), env=env)
        with server, edge:
            assert wait_line(edge, "h2c_edge", "switched to uniform/qp28", 0, 60), edge.output("link_monitor")
            assert wait_line(server, "h2c_server", "via uniform/qp28", 0, 30), (
                server.output("h2c_server") + edge.output("h2c_edge") + edge.output("camera_source"))

            n_edge, n_server = len(edge.lines["h2c_edge"]), len(server.lines["h2c_server"])
            link.set_rate(3.0)
            assert wait_line(edge, "h2c_edge", "switched to uniform/qp40", n_edge, 40), edge.output("link_monitor")
            assert wait_line(server, "h2c_server", "via uniform/qp40", n_server, 30), server.output("h2c_server")

            n_edge = len(edge.lines["h2c_edge"])
            link.set_up(False)
            assert wait_line(edge, "h2c_edge", "switched to edge_only", n_edge, 5), edge.output("link_monitor")
            time.sleep(2)
            n_edge = len(edge.lines["h2c_edge"])
            link.set_up(True)
            assert wait_line(edge, "h2c_edge", "switched to uniform/", n_edge, 10), edge.output("link_monitor")
            for g, key in ((edge, "camera_source"), (edge, "h2c_edge"), (edge, "link_monitor"),
                           (server, "h2c_server"), (server, "link_echo")):
                assert g.running(key), g.output(key)
