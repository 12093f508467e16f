"""An emulated edge-server link for tests and experiments: two private network namespaces
(``<name>_edge``, ``<name>_server``) joined by a veth pair, rate-shaped with tbf on both ends
(this kernel has no netem), cut and restored by taking the veth down / up. Needs root and
iproute2. Nodes run inside with ``prefix(side)`` and ``dds_env()``: DDS discovery then stays
inside the namespaces (multicast on the private veth), never on a real interface.

With ``delay_ms`` or ``loss`` the two sides are not joined directly: each veth ends in a third
namespace (``<name>_link``) where :mod:`offload_common.link_relay` bridges them in user space,
holding every frame for the one-way delay and dropping a fraction ``loss``.

    with EmulatedLink("eo_t", rate_mbps=3, delay_ms=20) as link:
        ProcessGraph(nodes, prefix=link.prefix("edge"), env=link.dds_env())
        link.set_rate(6.0); link.set_up(False); link.set_up(True)
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from typing import Dict, List, Optional

from offload_common.process_graph import scope_discovery, use_dds_profile


class LinkSetupError(RuntimeError):
    pass


def netns_available() -> Optional[str]:
    """None when namespaces can be made here, else why not."""
    if os.geteuid() != 0:
        return "needs root"
    if shutil.which("ip") is None or shutil.which("tc") is None:
        return "needs iproute2 (ip, tc)"
    name = f"eo_chk_{uuid.uuid4().hex[:6]}"
    if subprocess.run(["ip", "netns", "add", name], capture_output=True).returncode != 0:
        return "cannot create network namespaces"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return None


class EmulatedLink:
    SIDES = ("edge", "server")

    def __init__(self, name: str = "", rate_mbps: float = 50.0, subnet: str = "10.214.0", delay_ms: float = 0.0,
                 loss: float = 0.0, seed: int = 0):
        self.name = name or f"eo{uuid.uuid4().hex[:5]}"
        self.ns = {side: f"{self.name}_{side}" for side in self.SIDES}
        self.ifname = {"edge": f"{self.name}e", "server": f"{self.name}s"}
        self.addr = {"edge": f"{subnet}.1", "server": f"{subnet}.2"}
        self.rate_mbps = rate_mbps
        self.delay_ms, self.loss, self.seed = delay_ms, loss, seed
        self.relayed = delay_ms > 0 or loss > 0
        if self.relayed:
            self.ns["link"] = f"{self.name}_link"
        self.relay: Optional[subprocess.Popen] = None
        self.is_up = True

    # -- lifecycle ------------------------------------------------------------------------------
    def __enter__(self) -> "EmulatedLink":
        self.create()
        return self

    def __exit__(self, *exc) -> None:
        self.destroy()

    def _run(self, side: Optional[str], *cmd: str) -> None:
        full = (["ip", "netns", "exec", self.ns[side]] if side else []) + list(cmd)
        r = subprocess.run(full, capture_output=True, text=True)
        if r.returncode != 0:
            raise LinkSetupError(f"{' '.join(full)}: {r.stderr.strip()}")

    def create(self) -> None:
        why = netns_available()
        if why:
            raise LinkSetupError(why)
        try:
            for side in self.ns:
                self._run(None, "ip", "netns", "add", self.ns[side])
                self._run(side, "ip", "link", "set", "lo", "up")
                self._run(side, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
                self._run(side, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1")
            if self.relayed:
                self._start_relay()
            else:
                self._run("edge", "ip", "link", "add", self.ifname["edge"], "type", "veth", "peer", "name",
                          self.ifname["server"], "netns", self.ns["server"])
            for side in self.SIDES:
                self._run(side, "ip", "addr", "add", f"{self.addr[side]}/24", "dev", self.ifname[side])
                self._run(side, "ip", "link", "set", self.ifname[side], "up")
            self.set_rate(self.rate_mbps)
            self._wait_carrier(True)
        except Exception:
            self.destroy()
            raise

    def _start_relay(self) -> None:
        """veth edge <-> link namespace <-> veth server, bridged by the user-space relay."""
        inner = {"edge": f"{self.name}a", "server": f"{self.name}b"}
        for side in self.SIDES:
            self._run(side, "ip", "link", "add", self.ifname[side], "type", "veth", "peer", "name", inner[side],
                      "netns", self.ns["link"])
            self._run("link", "ip", "link", "set", inner[side], "up")
            self._run(side, sys.executable, "-c", "import sys; from offload_common.link_relay import "
                      "disable_offloads; disable_offloads(sys.argv[1])", self.ifname[side])
        self.relay = subprocess.Popen(
            self.prefix("link") + [sys.executable, "-m", "offload_common.link_relay", "--a", inner["edge"], "--b",
                                   inner["server"], "--delay-ms", str(self.delay_ms), "--loss", str(self.loss),
                                   "--seed", str(self.seed)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        line = self.relay.stdout.readline()          # "relay ... <-> ...": sockets bound
        if not line.startswith("relay "):
            raise LinkSetupError(f"link relay did not start: {line}{self.relay.stdout.read()}")

    def destroy(self) -> None:
        if self.relay is not None:
            self.relay.terminate()
            try:
                self.relay.wait(5)
            except subprocess.TimeoutExpired:
                self.relay.kill()
            self.relay = None
        for side in self.ns:
            subprocess.run(["ip", "netns", "del", self.ns[side]], capture_output=True)

    # -- control --------------------------------------------------------------------------------
    def set_rate(self, mbps: float) -> None:
        """tbf on both ends: ``mbps`` each way; the bucket holds ~2 ms at the rate (>= 4 kB), less
        than one capacity probe, so a back-to-back probe pair is spaced by the rate."""
        burst = max(4000, int(mbps * 1e6 / 8 / 500))
        for side in self.SIDES:
            self._run(side, "tc", "qdisc", "replace", "dev", self.ifname[side], "root", "tbf", "rate",
                      f"{mbps:g}mbit", "burst", str(burst), "latency", "400ms")
        self.rate_mbps = mbps

    def set_up(self, up: bool) -> None:
        """Cut (False) or restore (True) the link."""
        state = "up" if up else "down"
        for side in self.SIDES:
            self._run(side, "ip", "link", "set", self.ifname[side], state)
        if up:
            self.set_rate(self.rate_mbps)
            self._wait_carrier(True)
        self.is_up = up

    def _wait_carrier(self, up: bool, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        want = "up" if up else "down"
        while time.monotonic() < deadline:
            states = []
            for side in self.SIDES:
                r = subprocess.run(["ip", "netns", "exec", self.ns[side], "cat",
                                    f"/sys/class/net/{self.ifname[side]}/operstate"], capture_output=True, text=True)
                states.append(r.stdout.strip())
            if all(s == want for s in states):
                return
            time.sleep(0.05)
        raise LinkSetupError(f"veth did not come {want}")

    # -- running nodes inside ----------------------------------------------------------------------
    def prefix(self, side: str) -> List[str]:
        return ["ip", "netns", "exec", self.ns[side]]

    @staticmethod
    def dds_env(base: Optional[Dict[str, str]] = None) -> Dict[str, str]:
        """Environment for nodes inside the namespaces: discovery over the private subnet (the
        project's loopback-only Fast DDS profile would keep the two sides apart)."""
        env = dict(os.environ if base is None else base)
        env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "SUBNET"
        scope_discovery(env)
        use_dds_profile(env, None)
        return env
