#!/usr/bin/env python3
"""`make demo`: run each demo graph as separate node processes with the YAML parameter files in
config/ (the same executables and files as the launch file named in DEMOS), print what arrives,
and stop everything when the sink node is done.

    tools/ros_env.sh python tools/run_demo.py [--only camera,how2compress] [--results N]
"""
from __future__ import annotations

import argparse
import os
import sys

from offload_common.process_graph import NodeProcess, ProcessGraph, config_path

# demo name -> (launch file it mirrors, sink node, node processes). The sink's
# expected_* / timeout_s are set from the command line.
DEMOS = {
    "camera": ("demo.launch.py", "frame_counter", [
        NodeProcess("camera_source", "camera_source", config_path("camera_source.yaml")),
        NodeProcess("frame_counter", "frame_counter", config_path("frame_counter.yaml")),
    ]),
    "how2compress": ("how2compress.launch.py", "result_reporter", [
        NodeProcess("camera_source", "camera_source", config_path("camera_footage.yaml")),
        NodeProcess("h2c_edge", "h2c_edge", config_path("h2c_edge.yaml")),
        NodeProcess("h2c_server", "h2c_server", config_path("h2c_server.yaml")),
        NodeProcess("result_reporter", "result_reporter", config_path("result_reporter.yaml")),
    ]),
    "approxbit": ("approxbit.launch.py", "result_reporter", [
        NodeProcess("camera_source", "camera_source", config_path("camera_actions.yaml")),
        NodeProcess("approxbit_edge", "approxbit_edge", config_path("approxbit_edge.yaml")),
        NodeProcess("approxbit_server", "approxbit_server", config_path("approxbit_server.yaml")),
        NodeProcess("result_reporter", "result_reporter", config_path("result_reporter.yaml")),
    ]),
}
NEEDS = {"how2compress": ["data/footage/vtest.avi"], "approxbit": ["models/approxbit/cnn3d-actions/model.safetensors"]}


def run(name: str, count: int, timeout: float) -> bool:
    _launch, sink, nodes = DEMOS[name]
    missing = [p for p in NEEDS.get(name, []) if not os.path.exists(p)]
    if missing:
        print(f"== demo {name}: SKIPPED, missing {missing} (tools/fetch_footage.sh)", flush=True)
        return True
    key = "expected_frames" if sink == "frame_counter" else "expected_results"
    for n in nodes:
        if n.name == sink:
            n.overrides.update({key: count, "timeout_s": timeout})
    print(f"== demo {name}: {' -> '.join(n.name for n in nodes)} (until {count} at the sink)", flush=True)
    with ProcessGraph(nodes) as graph:
        code = graph.wait(sink, timeout=timeout + 30)
    print(f"== demo {name}: {'OK' if code == 0 else f'FAILED (exit {code})'}", flush=True)
    return code == 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=",".join(DEMOS), help="comma-separated demos to run")
    ap.add_argument("--results", type=int, default=60, help="frames / results each sink waits for")
    ap.add_argument("--timeout", type=float, default=90.0)
    args = ap.parse_args()
    ok = all([run(name, args.results, args.timeout) for name in args.only.split(",")])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
