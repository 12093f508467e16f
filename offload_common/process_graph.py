"""Start node executables as separate processes, the way ``ros2 launch`` would, for
``make demo`` and for tests on machines without the ``launch`` package.

Each node runs as ``<executable> --ros-args -r __node:=<name> --params-file <yaml> -p k:=v``.
Output lines are kept per node and optionally echoed with a ``[name]`` prefix.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional


@dataclass
class NodeProcess:
    executable: str
    name: str = ""
    params_file: Optional[str] = None
    overrides: Dict[str, object] = field(default_factory=dict)
    remaps: Dict[str, str] = field(default_factory=dict)

    def command(self) -> List[str]:
        exe = shutil.which(self.executable)
        if exe is None:
            raise FileNotFoundError(
                f"node executable {self.executable!r} not on PATH (run 'make setup' / pip install -e .)")
        cmd = [exe, "--ros-args"]
        if self.name:
            cmd += ["-r", f"__node:={self.name}"]
        for src, dst in self.remaps.items():
            cmd += ["-r", f"{src}:={dst}"]
        if self.params_file:
            cmd += ["--params-file", self.params_file]
        for key, value in self.overrides.items():
            cmd += ["-p", f"{key}:={_ros_value(value)}"]
        return cmd


def scope_discovery(env: Dict[str, str], default: str = "LOCALHOST") -> Dict[str, str]:
    """Keep DDS discovery in ``env`` to ``ROS_AUTOMATIC_DISCOVERY_RANGE`` (``default`` when
    unset) under every ROS 2 distro: Iron and newer read that variable, Humble ignores it and
    reads ``ROS_LOCALHOST_ONLY`` instead, which is then set to match (1 for LOCALHOST, else 0).
    Returns ``env``, changed in place."""
    scope = env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", default)
    if env.get("ROS_DISTRO") == "humble":
        env["ROS_LOCALHOST_ONLY"] = "1" if scope == "LOCALHOST" else "0"
    return env


#: the environment variables naming a Fast DDS XML profile: Fast DDS 3.x (Kilted and newer) reads
#: the first (and warns, on every node start, if the second is set), Fast DDS 2.x (Humble, Iron,
#: Jazzy) only the second
DDS_PROFILE_VARIABLES = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")
FAST_DDS_2_DISTROS = ("humble", "iron", "jazzy")


def dds_profile_variable(env: Optional[Dict[str, str]] = None, prefix: str = sys.prefix) -> str:
    """The variable the Fast DDS of this environment reads: by ``ROS_DISTRO`` where it is set
    (an apt install), else by the library in ``prefix``/lib (the PyPI wheels: libfastrtps.so is
    Fast DDS 2.x, libfastdds.so 3.x)."""
    distro = (os.environ if env is None else env).get("ROS_DISTRO", "")
    if distro:
        fast_dds_2 = distro in FAST_DDS_2_DISTROS
    else:
        fast_dds_2 = os.path.exists(os.path.join(prefix, "lib", "libfastrtps.so"))
    return DDS_PROFILE_VARIABLES[1 if fast_dds_2 else 0]


def use_dds_profile(env: Dict[str, str], path: Optional[str]) -> Dict[str, str]:
    """Make the Fast DDS of ``env`` load the XML profile ``path`` (None: none, Fast DDS's
    defaults). Returns ``env``, changed in place."""
    for name in DDS_PROFILE_VARIABLES:
        env.pop(name, None)
    if path:
        env[dds_profile_variable(env)] = path
    return env


def _ros_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if value else "''"
    return repr(value)


class ProcessGraph:
    """A set of node processes started together and stopped together."""

    def __init__(self, nodes: List[NodeProcess], *, echo: bool = True, env: Optional[dict] = None,
                 prefix: Optional[List[str]] = None):
        """``prefix`` is prepended to every command, e.g. ``["ip", "netns", "exec", "edge"]``."""
        self.nodes = nodes
        self.prefix = list(prefix or [])
        self.echo = echo
        self.env = dict(os.environ if env is None else env)
        scope_discovery(self.env)
        self.env["PYTHONUNBUFFERED"] = "1"
        self.procs: Dict[str, subprocess.Popen] = {}
        self.lines: Dict[str, List[str]] = {}
        self._threads: List[threading.Thread] = []

    def __enter__(self) -> "ProcessGraph":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        for node in self.nodes:
            self.start_one(node.name or node.executable)

    def start_one(self, key: str) -> None:
        """Start (or restart) one node of the graph; its earlier output is kept."""
        node = next(n for n in self.nodes if (n.name or n.executable) == key)
        proc = subprocess.Popen(self.prefix + node.command(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, env=self.env, start_new_session=True)
        self.procs[key] = proc
        self.lines.setdefault(key, [])
        t = threading.Thread(target=self._pump, args=(key, proc), daemon=True)
        t.start()
        self._threads.append(t)

    def stop_one(self, key: str, grace: float = 5.0) -> Optional[int]:
        """Stop one node (SIGINT, then SIGKILL after ``grace``); its return code."""
        p = self.procs[key]
        for sig, wait_s in ((signal.SIGINT, grace), (signal.SIGKILL, 2.0)):
            if p.poll() is not None:
                break
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=wait_s)
            except subprocess.TimeoutExpired:
                pass
        return p.returncode

    def _pump(self, key: str, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            line = line.rstrip("\n")
            self.lines[key].append(line)
            if self.echo:
                print(f"[{key}] {line}", flush=True)

    def output(self, key: str) -> str:
        return "\n".join(self.lines.get(key, []))

    def wait(self, key: str, timeout: float) -> Optional[int]:
        """Wait for one node to exit; its return code, or None on timeout."""
        try:
            return self.procs[key].wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def running(self, key: str) -> bool:
        return self.procs[key].poll() is None

    def stop(self, grace: float = 5.0) -> Dict[str, int]:
        """SIGINT every node (rclpy shuts down cleanly), then SIGTERM / SIGKILL stragglers."""
        for sig, wait_s in ((signal.SIGINT, grace), (signal.SIGTERM, 2.0), (signal.SIGKILL, 2.0)):
            alive = [p for p in self.procs.values() if p.poll() is None]
            if not alive:
                break
            for p in alive:
                try:
                    os.killpg(p.pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + wait_s
            for p in alive:
                try:
                    p.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
        for t in self._threads:
            t.join(timeout=1.0)
        return {k: p.returncode for k, p in self.procs.items()}


def config_path(name: str) -> str:
    """Path of a parameter file in this source tree's config/ folder."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.path.join(here, "config", name)
