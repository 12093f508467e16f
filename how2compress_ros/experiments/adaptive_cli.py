"""h2c_adaptive_experiment: the link monitor driving the How2Compress ("det") stream over a real
emulated link, with measured vs predicted latency.

The edge (camera_source playing a real clip, h2c_edge, link_monitor, offload_recorder, sla_scheduler) runs in
one network namespace, the server (h2c_server, link_echo) in another, joined by a tbf-shaped veth
pair. h2c_edge (EA model, x264, and the edge-only detector) runs under a CPU quota (--edge-cpu)
so the edge is the weak device; the monitor's ``edge_scale`` is the EA model's time inside vs
outside the quota. The monitor chooses among the lookup table's h2c/base<QP>, uniform/qp<QP> and
edge_only entries; the bandwidth follows a Fig. 9-style trace (50 / 3 / 6 Mbit/s by default) and
the SLA is a latency bound for the first phase and an F1 bound for the second (F1 is the
profiled one: the footage has no ground truth). Writes record.jsonl, summary.json and fig9.png
to --out and prints the summary (harness: offload_common/experiments/adaptive.py). Needs root.

    h2c_adaptive_experiment --lut build/h2c_lut_reuse5.json --out build/experiments/h2c
"""
from __future__ import annotations

import argparse
import os
import sys

from offload_common.cli import path_errors_in_one_line
from offload_common.experiments.adaptive import add_arguments, run_adaptive_experiment

DEFAULT_MODEL = "models/how2compress/ea-ssdlite-sensitivity-ft-d2"


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=DEFAULT_MODEL, help="EA model folder")
    ap.add_argument("--lut", default="", help="lookup table (default: <model>/lut_cpu.json); profile it with "
                                              "the same --map-reuse as here")
    ap.add_argument("--video", default="data/footage/vtest.avi", help="clip the camera plays (looped)")
    ap.add_argument("--camera-hz", type=float, default=5.0)
    ap.add_argument("--map-reuse", type=int, default=1, help="h2c_edge map_reuse (match the lookup table's)")
    add_arguments(ap, out="build/experiments/h2c", levels="50,3,6", sla_latency_ms=150.0, sla_accuracy=0.95,
                  edge_cpu=0.25)
    return ap.parse_args(argv)


@path_errors_in_one_line("h2c_adaptive_experiment")
def main(argv=None) -> int:
    from offload_common.lookup_table import LookupTable
    from offload_common.process_graph import NodeProcess, ProcessGraph, config_path

    args = parse_args(argv)
    model = os.path.abspath(args.model)
    lut = os.path.abspath(args.lut or os.path.join(model, "lut_cpu.json"))
    video = os.path.abspath(args.video)
    if not os.path.isfile(video):
        print(f"h2c_adaptive_experiment: no clip at {video} (tools/fetch_footage.sh)", file=sys.stderr)
        return 2
    meta = LookupTable.load(lut).meta
    if int(meta.get("map_reuse", 1)) != args.map_reuse:
        print(f"h2c_adaptive_experiment: warning: {lut} was profiled with map_reuse {meta.get('map_reuse')}, "
              f"the edge runs {args.map_reuse}", flush=True)
    width, height = (int(x) for x in str(meta.get("size", "768x576")).split("x"))

    def graphs(s):
        server = ProcessGraph([
            NodeProcess("h2c_server", "h2c_server", config_path("h2c_server.yaml"),
                        overrides={"publish_decoded_image": False, "torch_threads": 1}),
            NodeProcess("link_echo", "link_echo", config_path("link_echo.yaml"))],
            echo=False, prefix=s.server_prefix, env=s.env)
        edge_model = ProcessGraph([
            NodeProcess("h2c_edge", "h2c_edge", config_path("h2c_edge.yaml"), overrides={
                "model_path": model, "config_id": "edge_only", "map_reuse": args.map_reuse, "torch_threads": 1,
                "fps": args.camera_hz, "edge_detector": "ssdlite", "edge_score_threshold": 0.5})],
            echo=False, prefix=s.edge_model_prefix, env=s.env)
        edge = ProcessGraph([s.monitor, s.recorder, s.scheduler,
            NodeProcess("camera_source", "camera_source", config_path("camera_source.yaml"), overrides={
                "source": "video", "uri": video, "loop": True, "rate_hz": args.camera_hz, "width": width,
                "height": height, "wait_for_subscribers": 1})],
            echo=False, prefix=s.edge_prefix, env=s.env)
        return server, edge_model, edge, "camera_source"

    return run_adaptive_experiment(
        args, stream_id="det", lut=lut, graphs=graphs,
        edge_speed=("how2compress_ros.experiments.edge_speed",
                    ["--model", model, "--width", str(width), "--height", str(height)]),
        title="How2Compress adaptive offloading", metric="F1 (profiled)",
        command="h2c_adaptive_experiment " + " ".join(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
