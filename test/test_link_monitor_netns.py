"""The link monitor on an emulated link: link_monitor in an 'edge' network namespace, link_echo
in a 'server' one, joined by a tbf-shaped veth pair. The monitor's bandwidth estimate follows
the shaped rate (3 and 6 Mbit/s); cutting the veth makes it fall back to edge-only within 2 s,
restoring it brings offloading back within 5 s; no node crashes."""
import re
import shutil
import time

import pytest

from offload_common.lookup_table import LookupTable, LutEntry
from offload_common.netns_link import EmulatedLink, netns_available
from offload_common.process_graph import NodeProcess, ProcessGraph, config_path

WHY = netns_available()
pytestmark = [pytest.mark.skipif(WHY is not None, reason=f"emulated links: {WHY}"),
              pytest.mark.skipif(shutil.which("link_monitor") is None, reason="node entry points not installed")]

ESTIMATE = re.compile(r"link up: B ([0-9.]+) Mb/s \(receipts\)")


def estimates(graph):
    return [float(m.group(1)) for m in ESTIMATE.finditer(graph.output("link_monitor"))]


def wait_line(graph, key, needle, start_count, timeout):
    """Time when a line containing ``needle`` appears after the first ``start_count`` lines."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(needle in ln for ln in graph.lines[key][start_count:]):
            return time.monotonic()
        time.sleep(0.05)
    return None


def wait_estimates(graph, rate: float, timeout: float):
    """The last three bandwidth estimates the monitor logged, once all are within 20 % of ``rate``
    (or whatever they are when ``timeout`` runs out)."""
    deadline = time.monotonic() + timeout
    last = estimates(graph)[-3:]
    while time.monotonic() < deadline:
        last = estimates(graph)[-3:]
        if len(last) == 3 and all(abs(b - rate) / rate < 0.2 for b in last):
            break
        time.sleep(0.2)
    return last


def test_estimate_follows_the_shaped_rate_and_fallback_on_cut(tmp_path):
    lut = str(tmp_path / "lut.json")
    LookupTable("var", "test", "top1", [
        LutEntry("cnn3d/o2/noenc/k8", "binary", 0.99, 4096, 10, 1, 30, 5),
        LutEntry("cnn3d/o2/enc/k4", "binary", 0.97, 256, 10, 1, 10, 5),
        LutEntry("edge_only", "edge_only", 0.99, 0, 900),
    ]).save(lut)
    with EmulatedLink(rate_mbps=3.0) as link:
        monitor = NodeProcess("link_monitor", "link_monitor", config_path("link_monitor.yaml"),
                              overrides={"lookup_tables": lut, "sla_latency_ms": 200.0, "log_period_s": 1.0,
                                         "loss_timeout_s": 1.0})
        echo = NodeProcess("link_echo", "link_echo", config_path("link_echo.yaml"))
        with ProcessGraph([echo], echo=False, prefix=link.prefix("server"), env=link.dds_env()) as server, \
                ProcessGraph([monitor], echo=False, prefix=link.prefix("edge"), env=link.dds_env()) as edge:
            assert wait_line(edge, "link_monitor", "-> cnn3d/o2/noenc/k8", 0, 30), edge.output("link_monitor")
            # a capacity pair every 2 s, EWMA 0.3: ~8 samples to converge; wait for the last three
            # logged estimates (one a second) to lie within 20 % of the shaped rate
            at3 = wait_estimates(edge, 3.0, 30)
            link.set_rate(6.0)
            at6 = wait_estimates(edge, 6.0, 40)
            assert at3 and all(abs(b - 3.0) / 3.0 < 0.2 for b in at3), at3
            assert at6 and all(abs(b - 6.0) / 6.0 < 0.2 for b in at6), at6

            n = len(edge.lines["link_monitor"])
            t_cut = time.monotonic()
            link.set_up(False)
            t_fb = wait_line(edge, "link_monitor", "-> edge_only: link down", n, 10)
            assert t_fb is not None and t_fb - t_cut < 2.0, edge.output("link_monitor")
            time.sleep(3)
            n = len(edge.lines["link_monitor"])
            t_up = time.monotonic()
            link.set_up(True)
            t_back = wait_line(edge, "link_monitor", "-> cnn3d/o2/", n, 10)
            assert t_back is not None and t_back - t_up < 5.0, edge.output("link_monitor")
            assert edge.running("link_monitor") and server.running("link_echo")
