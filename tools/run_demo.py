#!/usr/bin/env python3
"""`make demo`: run the demo graph as separate node processes with the YAML parameter files
in config/ (the same executables and files as launch/demo.launch.py), print what arrives,
and stop everything when the sink node is done.

    tools/ros_env.sh python tools/run_demo.py [--frames N]
"""
from __future__ import annotations

import argparse
import sys

from offload_common.process_graph import NodeProcess, ProcessGraph, config_path


def camera_demo(frames: int) -> int:
    print(f"== demo: camera_source -> frame_counter ({frames} frames over DDS)", flush=True)
    nodes = [
        NodeProcess("camera_source", "camera_source", config_path("camera_source.yaml")),
        NodeProcess("frame_counter", "frame_counter", config_path("frame_counter.yaml"),
                    overrides={"expected_frames": frames, "timeout_s": 60.0}),
    ]
    with ProcessGraph(nodes) as graph:
        code = graph.wait("frame_counter", timeout=90)
    if code != 0:
        print(f"== camera demo FAILED (frame_counter exit code {code})", flush=True)
        return 1
    print("== camera demo OK", flush=True)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=75, help="frames the camera demo waits for")
    args = ap.parse_args()
    return camera_demo(args.frames)


if __name__ == "__main__":
    sys.exit(main())
