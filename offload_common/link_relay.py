"""A user-space link relay: one-way delay and random loss where the kernel has no netem.

It bridges two interfaces at layer 2 with AF_PACKET sockets (every Ethernet frame, ARP included):
a frame arriving on one side is held for ``delay_ms`` and then sent out of the other, or dropped
with probability ``loss``. It runs inside the middle network namespace of an
:class:`~offload_common.netns_link.EmulatedLink`; tbf shapes the rate on the outer veths.

    python -m offload_common.link_relay --a eoXm0 --b eoXm1 --delay-ms 20 --loss 0.01

Checksum and segmentation offloads are turned off on the bridged interfaces (SIOCETHTOOL, as
``ethtool -K IF tx off tso off gso off gro off`` does): a frame copied out of a packet socket
must carry its final checksum. Needs root (CAP_NET_RAW, CAP_NET_ADMIN).
"""
from __future__ import annotations

import argparse
import collections
import fcntl
import random
import select
import signal
import socket
import struct
import sys
import time
from typing import Deque, Dict, Tuple

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SIOCETHTOOL = 0x8946
# ethtool "set" commands for tx checksum, TSO, GSO and GRO
ETHTOOL_OFFLOAD_SETTERS = (0x17, 0x1f, 0x24, 0x2c)
MAX_FRAME = 65536


def disable_offloads(ifname: str) -> None:
    """Turn off tx checksum / TSO / GSO / GRO on ``ifname`` (best effort, as ethtool -K)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for cmd in ETHTOOL_OFFLOAD_SETTERS:
            value = struct.pack("II", cmd, 0)
            buf = bytearray(value)
            ifreq = struct.pack("16sP16x", ifname.encode()[:15], _address_of(buf))
            try:
                fcntl.ioctl(s.fileno(), SIOCETHTOOL, ifreq)
            except OSError:
                pass


def _address_of(buf: bytearray) -> int:
    import ctypes

    return ctypes.addressof((ctypes.c_char * len(buf)).from_buffer(buf))


class LinkRelay:
    """Forward frames both ways between interfaces ``a`` and ``b`` with a fixed one-way delay and
    independent random loss per frame (seeded)."""

    def __init__(self, a: str, b: str, delay_ms: float = 0.0, loss: float = 0.0, seed: int = 0):
        if not 0.0 <= loss < 1.0:
            raise ValueError(f"loss must be in [0, 1), got {loss}")
        if delay_ms < 0:
            raise ValueError(f"delay must be >= 0 ms, got {delay_ms}")
        self.delay_s, self.loss = delay_ms / 1000.0, loss
        self.rng = random.Random(seed)
        self.socks: Dict[str, socket.socket] = {}
        for name in (a, b):
            disable_offloads(name)
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            s.bind((name, 0))
            s.setblocking(False)
            self.socks[name] = s
        self.peer = {a: b, b: a}
        # frames in flight, per output interface, in arrival order (constant delay keeps it FIFO)
        self.queues: Dict[str, Deque[Tuple[float, bytes]]] = {a: collections.deque(), b: collections.deque()}
        self.counts = {"forwarded": 0, "dropped": 0}
        self.running = True

    def _receive(self, name: str, now: float) -> None:
        sock = self.socks[name]
        while True:
            try:
                frame, addr = sock.recvfrom(MAX_FRAME)
            except BlockingIOError:
                return
            if addr[2] == PACKET_OUTGOING:        # our own transmissions, seen by the packet socket
                continue
            if self.loss and self.rng.random() < self.loss:
                self.counts["dropped"] += 1
                continue
            self.queues[self.peer[name]].append((now + self.delay_s, frame))

    def _release(self, now: float) -> float:
        """Send every due frame; return seconds until the next one is due (or 0.5 s)."""
        wait = 0.5
        for name, q in self.queues.items():
            while q and q[0][0] <= now:
                try:
                    self.socks[name].send(q.popleft()[1])
                    self.counts["forwarded"] += 1
                except OSError:             # interface down (link cut): the frame is lost
                    self.counts["dropped"] += 1
            if q:
                wait = min(wait, q[0][0] - now)
        return max(wait, 0.0)

    def run(self) -> None:
        by_fd = {s.fileno(): name for name, s in self.socks.items()}
        wait = 0.5
        while self.running:
            ready, _, _ = select.select(list(by_fd), [], [], wait)
            now = time.monotonic()
            for fd in ready:
                self._receive(by_fd[fd], now)
            wait = self._release(time.monotonic())

    def close(self) -> None:
        for s in self.socks.values():
            s.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", required=True, help="first interface")
    ap.add_argument("--b", required=True, help="second interface")
    ap.add_argument("--delay-ms", type=float, default=0.0, help="one-way delay added each way")
    ap.add_argument("--loss", type=float, default=0.0, help="probability of dropping a frame, each way")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    relay = LinkRelay(args.a, args.b, args.delay_ms, args.loss, args.seed)

    def stop(*_):
        relay.running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"relay {args.a} <-> {args.b}: delay {args.delay_ms:g} ms, loss {args.loss:g}", flush=True)
    try:
        relay.run()
    finally:
        relay.close()
        print(f"relay stopped: {relay.counts}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
