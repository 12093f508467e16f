#!/usr/bin/env python3
"""Draw the README's picture of the node graph from a running graph, so it stays true.

Starts the edge nodes (camera_source, approxbit_edge, h2c_edge, link_monitor) and the server
nodes (approxbit_server, h2c_server, link_echo, result_reporter) with their demo parameters,
asks the ROS graph which topics each one publishes and subscribes (rclpy's graph API, as
``ros2 node info`` does), and writes

- ``docs/figures/node_graph.json``: node -> {"publishes": [...], "subscribes": [...]};
- ``docs/figures/node_graph.png``: edge nodes left, server nodes right, the topics between them
  (those that cross the link in the middle column).

    tools/ros_env.sh python tools/draw_node_graph.py            # writes both
    tools/ros_env.sh python tools/draw_node_graph.py --check    # exit 1 if the JSON is out of date
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

EDGE = ("camera_source", "approxbit_edge", "h2c_edge", "link_monitor")
SERVER = ("approxbit_server", "h2c_server", "link_echo", "result_reporter")
IGNORED = {"/rosout", "/parameter_events"}
JSON_PATH = os.path.join(ROOT, "docs", "figures", "node_graph.json")
PNG_PATH = os.path.join(ROOT, "docs", "figures", "node_graph.png")


def measure(timeout: float = 90.0) -> dict:
    """Start the graph, wait until every node shows its topics, return them."""
    import rclpy

    from offload_common.process_graph import NodeProcess, ProcessGraph, config_path

    yaml = {"camera_source": "camera_actions.yaml"}
    nodes = [NodeProcess(n, n, config_path(yaml.get(n, f"{n}.yaml"))) for n in EDGE + SERVER]
    rclpy.init()
    probe = rclpy.create_node("node_graph_probe")
    found = {}
    try:
        with ProcessGraph(nodes, echo=False) as graph:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                rclpy.spin_once(probe, timeout_sec=0.2)
                names = {n for n, _ in probe.get_node_names_and_namespaces()}
                if set(EDGE + SERVER) <= names:
                    found = {n: _topics(probe, n) for n in EDGE + SERVER}
                    # a node declares its topics while it starts: wait until the picture stops changing
                    time.sleep(3.0)
                    again = {n: _topics(probe, n) for n in EDGE + SERVER}
                    if again == found and all(v["publishes"] or v["subscribes"] for v in found.values()):
                        break
                for n in EDGE + SERVER:
                    if not graph.running(n):
                        raise RuntimeError(f"{n} stopped:\n{graph.output(n)[-2000:]}")
            else:
                raise RuntimeError(f"not every node came up in {timeout:.0f} s")
    finally:
        probe.destroy_node()
        rclpy.shutdown()
    return found


def _topics(probe, name: str) -> dict:
    pubs = probe.get_publisher_names_and_types_by_node(name, "/")
    subs = probe.get_subscriber_names_and_types_by_node(name, "/")
    keep = lambda pairs: sorted({t for t, _ in pairs if t not in IGNORED})  # noqa: E731
    return {"publishes": keep(pubs), "subscribes": keep(subs)}


def draw(graph: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch

    topics = sorted({t for v in graph.values() for k in ("publishes", "subscribes") for t in v[k]})
    side = {n: "edge" for n in EDGE}
    side.update({n: "server" for n in SERVER})

    def sides(topic, key):
        return {side[n] for n, v in graph.items() if topic in v[key]}

    crossing = [t for t in topics if (sides(t, "publishes") | sides(t, "subscribes")) == {"edge", "server"}]
    local = [t for t in topics if t not in crossing and (sides(t, "publishes") and sides(t, "subscribes"))]
    fig, ax = plt.subplots(figsize=(12, 7.5))
    ax.set_xlim(0, 12)
    ax.set_ylim(-0.5, max(len(crossing), 8) + 1)
    ax.axis("off")
    pos = {}
    top = max(len(crossing), 8)
    for i, n in enumerate(EDGE):
        pos[n] = (1.3, top - 0.5 - i * top / len(EDGE))
    for i, n in enumerate(SERVER):
        pos[n] = (10.7, top - 0.5 - i * top / len(SERVER))
    for i, t in enumerate(crossing):
        pos[t] = (6.0, top - i * top / max(1, len(crossing) - 1) if len(crossing) > 1 else top / 2)
    for n, (x, y) in pos.items():
        if n in graph:
            ax.text(x, y, n, ha="center", va="center", fontsize=11, family="monospace",
                    bbox=dict(boxstyle="round,pad=0.5", fc="#dbe9f6" if side[n] == "edge" else "#fde4cf", ec="#444"))
        else:
            ax.text(x, y, n.lstrip("/"), ha="center", va="center", fontsize=9, family="monospace",
                    bbox=dict(boxstyle="square,pad=0.3", fc="white", ec="#999"))
    for n, v in graph.items():
        for t in v["publishes"]:
            if t in pos:
                ax.add_patch(FancyArrowPatch(pos[n], pos[t], arrowstyle="-|>", mutation_scale=10, color="#2b6cb0",
                                             shrinkA=45, shrinkB=38, lw=0.9, alpha=0.8))
        for t in v["subscribes"]:
            if t in pos:
                ax.add_patch(FancyArrowPatch(pos[t], pos[n], arrowstyle="-|>", mutation_scale=10, color="#c05621",
                                             shrinkA=38, shrinkB=45, lw=0.9, alpha=0.8))
    ax.text(1.3, top + 0.7, "robot (edge)", ha="center", fontsize=13, weight="bold")
    ax.text(6.0, top + 0.7, "topics across the link", ha="center", fontsize=13, weight="bold")
    ax.text(10.7, top + 0.7, "server", ha="center", fontsize=13, weight="bold")
    ax.axvline(3.6, color="#bbb", ls="--", lw=0.8)
    ax.axvline(8.4, color="#bbb", ls="--", lw=0.8)
    same = ", ".join(t.lstrip("/") for t in local)
    ax.text(6.0, -0.4, f"blue: publishes, orange: subscribes. Topics within one side: {same or 'none'}",
            ha="center", fontsize=8.5, wrap=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="compare with the committed JSON; write nothing")
    args = ap.parse_args(argv)
    graph = measure()
    if args.check:
        with open(JSON_PATH) as f:
            committed = json.load(f)
        if committed != graph:
            print(f"{JSON_PATH} is out of date: rerun tools/draw_node_graph.py\nnow: {json.dumps(graph, indent=1)}")
            return 1
        print("node graph picture is current")
        return 0
    with open(JSON_PATH, "w") as f:
        json.dump(graph, f, indent=1)
        f.write("\n")
    draw(graph, PNG_PATH)
    print(f"wrote {JSON_PATH} and {PNG_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
