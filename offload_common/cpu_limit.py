"""A weaker edge computer, emulated for real: processes started with ``CpuLimit.prefix()`` run in
a cgroup whose CFS quota lets them use ``fraction`` of one CPU (e.g. 0.2 makes a model 5x slower,
roughly a Jetson's CPU next to this machine's). Works with cgroup v1 (``/sys/fs/cgroup/cpu``)
and v2 (``cpu.max``); needs root. ``cpu_limit_available()`` says why not, for tests to skip.

    with CpuLimit(0.2) as edge_cpu:
        ProcessGraph(nodes, prefix=edge_cpu.prefix() + link.prefix("edge"))   # cgroup first: netns exec remounts /sys
"""
from __future__ import annotations

import os
import time
import uuid
from typing import List, Optional

V1_ROOT, V2_ROOT = "/sys/fs/cgroup/cpu", "/sys/fs/cgroup/unified"


def _root() -> Optional[str]:
    if os.path.isfile(os.path.join(V1_ROOT, "cpu.cfs_quota_us")):
        return V1_ROOT
    for root in (V2_ROOT, "/sys/fs/cgroup"):
        if os.path.isfile(os.path.join(root, "cgroup.controllers")):
            with open(os.path.join(root, "cgroup.controllers")) as f:
                if "cpu" in f.read().split():
                    return root
    return None


def cpu_limit_available() -> Optional[str]:
    """None when CPU quotas can be set here, else why not."""
    if os.geteuid() != 0:
        return "needs root"
    root = _root()
    if root is None:
        return "no cgroup cpu controller"
    if not os.access(root, os.W_OK):
        return f"{root} is not writable"
    return None


class CpuLimit:
    def __init__(self, fraction: float, period_us: int = 5_000, name: str = ""):
        if not 0 < fraction <= 64:
            raise ValueError(f"CPU fraction must be in (0, 64], got {fraction}")
        self.fraction, self.period_us = fraction, period_us
        self.name = name or f"edge_offload_{uuid.uuid4().hex[:6]}"
        self.path: Optional[str] = None

    def __enter__(self) -> "CpuLimit":
        why = cpu_limit_available()
        if why:
            raise RuntimeError(f"cannot limit CPU: {why}")
        root = _root()
        self.path = os.path.join(root, self.name)
        os.makedirs(self.path, exist_ok=True)
        quota = max(1000, int(self.fraction * self.period_us))
        if root == V1_ROOT:
            self._write("cpu.cfs_period_us", str(self.period_us))
            self._write("cpu.cfs_quota_us", str(quota))
        else:
            self._write("cpu.max", f"{quota} {self.period_us}")
        return self

    def _write(self, name: str, value: str) -> None:
        with open(os.path.join(self.path, name), "w") as f:
            f.write(value)

    def prefix(self) -> List[str]:
        """Command prefix that moves the started process into the cgroup, then execs it."""
        return ["sh", "-c", f'echo $$ > {self.path}/cgroup.procs && exec "$@"', "sh"]

    def __exit__(self, *exc) -> None:
        if self.path is None:
            return
        for _ in range(50):                # processes may take a moment to exit
            try:
                os.rmdir(self.path)
                break
            except OSError:
                time.sleep(0.1)
        self.path = None
