"""The user-space link relay on an emulated link: UDP round trips through the relay take twice
the configured one-way delay, and the configured loss drops about that fraction of frames each
way. Runs a UDP echo in the 'server' namespace and a client in the 'edge' namespace."""
import json
import subprocess
import sys

import pytest

from offload_common.netns_link import EmulatedLink, netns_available

WHY = netns_available()
pytestmark = pytest.mark.skipif(WHY is not None, reason=f"emulated links: {WHY}")

ECHO = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 47000))
print("ready", flush=True)
while True:
    data, addr = s.recvfrom(65536); s.sendto(data, addr)
"""

CLIENT = """
import json, socket, sys, time
host, n, gap = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.5)
rtts = []
for i in range(n):
    t0 = time.monotonic(); s.sendto(i.to_bytes(4, "big") + b"x" * 200, (host, 47000))
    try:
        while True:
            data, _ = s.recvfrom(65536)
            if int.from_bytes(data[:4], "big") == i:
                rtts.append((time.monotonic() - t0) * 1000); break
    except socket.timeout:
        pass
    time.sleep(gap)
print(json.dumps(rtts))
"""


def round_trips(link, n, gap=0.02):
    echo = subprocess.Popen(link.prefix("server") + [sys.executable, "-c", ECHO], stdout=subprocess.PIPE, text=True)
    try:
        assert echo.stdout.readline().startswith("ready")
        out = subprocess.run(link.prefix("edge") + [sys.executable, "-c", CLIENT, link.addr["server"], str(n),
                                                    str(gap)], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)
    finally:
        echo.kill()
        echo.wait()


def test_relay_adds_the_one_way_delay_each_way():
    with EmulatedLink(rate_mbps=20, delay_ms=40) as link:
        rtts = sorted(round_trips(link, 30)[3:])     # the first include ARP resolution
    assert len(rtts) >= 25
    median = rtts[len(rtts) // 2]
    assert 80 <= median < 80 + 15, rtts


def test_relay_drops_the_configured_fraction():
    with EmulatedLink(rate_mbps=20, loss=0.2, seed=3) as link:
        rtts = round_trips(link, 200, gap=0.005)
    delivered = len(rtts) / 200                      # a round trip survives two independent drops
    assert abs(delivered - 0.8 ** 2) < 0.12, delivered
    # no added delay: the packets that survive come back as fast as on a lossless link (median; a
    # single late one is the scheduler on a busy 2-core machine, not the relay)
    assert sorted(rtts)[len(rtts) // 2] < 20, rtts
