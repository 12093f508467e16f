"""approxbit_adaptive_experiment: ApproxBit's Fig. 9 on our models, over a real emulated link.

The edge (camera_source, approxbit_edge, link_monitor, experiment_recorder) runs in one network
namespace, the server (approxbit_server, link_echo) in another, joined by a tbf-shaped veth pair
(plus the user-space delay / loss relay with --delay-ms / --loss). approxbit_edge runs under a
CPU quota (--edge-cpu, default 0.2 of a core) so the edge is the weak device of the paper; the
monitor's ``edge_scale`` is measured (whole backbone inside vs outside the quota). The bandwidth
follows a Fig. 9 trace (levels in turn, fluctuating, repeated); the SLA is a latency bound for the
first phase and an accuracy bound for the second. Writes record.jsonl, truth.txt, summary.json
and fig9.png to --out, and prints the summary. Needs root (namespaces, tc, cgroups).

    approxbit_adaptive_experiment --out build/experiments/fig9
    approxbit_adaptive_experiment --phases latency --sla-latency-ms 20 --out build/experiments/infeasible
    approxbit_adaptive_experiment --levels 50,3,6 --fluctuation 0 --repeats 1 --out build/experiments/steady
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def measure_edge_scale(backbone: str, prefix, env) -> float:
    """Whole-backbone time inside the edge's CPU limit / outside it."""
    def median(pre):
        out = subprocess.run(pre + [sys.executable, "-m", "approxbit_ros.experiments.edge_speed", "--backbone", backbone, "--clips", "60"],
                             capture_output=True, text=True, env=env, timeout=300)
        if out.returncode != 0:
            raise RuntimeError(f"edge speed measurement failed: {out.stderr[-2000:]}")
        return float(out.stdout.split("median_ms")[1])
    return median(prefix) / median([])


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", default="models/approxbit/cnn3d-actions")
    ap.add_argument("--lut", default="", help="lookup table (default: <backbone>/lut_cpu.json)")
    ap.add_argument("--out", default="build/experiments/fig9")
    ap.add_argument("--levels", default="50,3,6", help="bandwidth levels (Mbit/s) of a cycle")
    ap.add_argument("--segment-s", type=float, default=40.0, help="seconds per level")
    ap.add_argument("--repeats", type=int, default=2, help="cycles of the levels")
    ap.add_argument("--fluctuation", type=float, default=0.1, help="+- relative fluctuation within a level")
    ap.add_argument("--step-s", type=float, default=5.0, help="seconds between fluctuation steps")
    ap.add_argument("--phases", default="latency,accuracy", help="SLA kinds, splitting the run in equal parts")
    ap.add_argument("--sla-latency-ms", type=float, default=80.0)
    ap.add_argument("--sla-accuracy", type=float, default=0.97)
    ap.add_argument("--headroom", type=float, default=0.05,
                    help="monitor headroom: a configuration switched to meets a latency SLA with this fraction to spare")
    ap.add_argument("--latency-quantile", type=float, default=0.95,
                    help="the monitor checks a latency SLA against this predicted quantile (calibrated from results)")
    ap.add_argument("--calibration-window", type=int, default=60, help="results per configuration the monitor keeps")
    ap.add_argument("--no-calibration", action="store_true",
                    help="predict from the lookup table x edge_scale only (the uncalibrated monitor)")
    ap.add_argument("--edge-cpu", type=float, default=0.2, help="CPU quota of the edge model node (cores)")
    ap.add_argument("--delay-ms", type=float, default=0.0, help="one-way link delay (user-space relay)")
    ap.add_argument("--loss", type=float, default=0.0, help="frame loss each way (user-space relay)")
    ap.add_argument("--cut-at", type=float, default=-1.0, help="cut the link at this second (negative: never)")
    ap.add_argument("--cut-for", type=float, default=10.0, help="seconds the link stays cut")
    ap.add_argument("--camera-hz", type=float, default=32.0, help="frame rate (a clip every 16 frames)")
    ap.add_argument("--warmup-s", type=float, default=20.0, help="seconds at the first level before the trace")
    ap.add_argument("--seed", type=int, default=0)
    return ap.parse_args(argv)


def main(argv=None) -> int:
    from approxbit_ros.experiments.analysis import load_run, plot, summarize
    from offload_common.cpu_limit import CpuLimit, cpu_limit_available
    from offload_common.link_trace import TracePlayer, fig9_trace
    from offload_common.lookup_table import LookupTable
    from offload_common.netns_link import EmulatedLink, netns_available
    from offload_common.process_graph import NodeProcess, ProcessGraph, config_path

    args = parse_args(argv)
    why = netns_available() or cpu_limit_available()
    if why:
        print(f"approxbit_adaptive_experiment: {why}", file=sys.stderr)
        return 2
    backbone = os.path.abspath(args.backbone)
    lut = os.path.abspath(args.lut or os.path.join(backbone, "lut_cpu.json"))
    os.makedirs(args.out, exist_ok=True)
    record, truth = os.path.abspath(os.path.join(args.out, "record.jsonl")), os.path.abspath(
        os.path.join(args.out, "truth.txt"))
    for p in (record, truth):
        if os.path.exists(p):
            os.remove(p)
    levels = [float(x) for x in args.levels.split(",")]
    trace = fig9_trace(args.segment_s, levels, args.repeats, args.fluctuation, args.step_s, args.seed)
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    span = trace.duration_s / len(phases)
    schedule = ",".join(f"{i * span:g}:{k}:{args.sla_latency_ms if k == 'latency' else args.sla_accuracy:g}"
                        for i, k in enumerate(phases))
    events = []
    with EmulatedLink(rate_mbps=trace.steps[0][1], delay_ms=args.delay_ms, loss=args.loss, seed=args.seed) as link, \
            CpuLimit(args.edge_cpu) as edge_cpu:
        env = link.dds_env()
        edge_scale = measure_edge_scale(backbone, edge_cpu.prefix(), env)
        print(f"edge CPU quota {args.edge_cpu:g} core: edge_scale {edge_scale:.2f}", flush=True)
        server = ProcessGraph([
            NodeProcess("approxbit_server", "approxbit_server", config_path("approxbit_server.yaml"),
                        overrides={"backbone_path": backbone, "torch_threads": 1}),
            NodeProcess("link_echo", "link_echo", config_path("link_echo.yaml"))],
            echo=False, prefix=link.prefix("server"), env=env)
        edge_model = ProcessGraph([
            NodeProcess("approxbit_edge", "approxbit_edge", config_path("approxbit_edge.yaml"),
                        overrides={"backbone_path": backbone, "torch_threads": 1, "config_id": "edge_only"})],
            echo=False, prefix=edge_cpu.prefix() + link.prefix("edge"), env=env)
        t0 = time.time() + args.warmup_s + 15.0          # after model loading and warm-up
        first = phases[0]
        edge = ProcessGraph([
            NodeProcess("link_monitor", "link_monitor", config_path("link_monitor.yaml"), overrides={
                "lookup_tables": lut, "edge_scale": edge_scale, "sla_kind": first,
                "sla_latency_ms": args.sla_latency_ms, "sla_accuracy": args.sla_accuracy, "log_period_s": 5.0,
                "headroom": args.headroom, "latency_quantile": args.latency_quantile,
                "calibration_window": args.calibration_window, "calibrate_from_results": not args.no_calibration}),
            NodeProcess("experiment_recorder", "experiment_recorder", config_path("experiment_recorder.yaml"),
                        overrides={"output": record, "sla_schedule": schedule, "start_unix_s": t0}),
            NodeProcess("camera_source", "camera_source", config_path("camera_actions.yaml"), overrides={
                "rate_hz": args.camera_hz, "width": 64, "height": 64, "ground_truth_log": truth,
                "wait_for_subscribers": 1})],
            echo=False, prefix=link.prefix("edge"), env=env)
        graphs = (server, edge_model, edge)
        try:
            for g in graphs:
                g.start()
            time.sleep(max(0.0, t0 - time.time()))
            print(f"trace: {trace.duration_s:.0f} s, levels {levels} Mbit/s; SLA schedule {schedule}", flush=True)
            player = TracePlayer(trace, link.set_rate, lambda e: print(f"rate change failed: {e}", flush=True))
            player.start(t0)
            cut_done = args.cut_at < 0
            while not player.wait(0.2):
                now = time.time() - t0
                if not cut_done and now >= args.cut_at:
                    link.set_up(False)
                    events.append((time.time(), "cut"))
                    print(f"{now:.0f} s: link cut", flush=True)
                    time.sleep(args.cut_for)
                    link.set_up(True)
                    events.append((time.time(), "restore"))
                    print(f"{time.time() - t0:.0f} s: link restored", flush=True)
                    cut_done = True
            edge.stop_one("camera_source")
            time.sleep(3.0)
        finally:
            codes = {}
            for g in reversed(graphs):
                codes.update(g.stop())
            for g in graphs:
                for key in g.lines:
                    with open(os.path.join(args.out, f"{key}.log"), "w") as f:
                        f.write(g.output(key))
        crashed = {k: c for k, c in codes.items() if c not in (0, -2, 130)}
    run = load_run(record, truth, player.applied, events, t0)
    table = {e.config_id: e for e in LookupTable.load(lut).entries}
    summary = summarize(run, sorted(levels), lambda cid, bw, delay: table[cid].latency_ms(bw, delay, edge_scale)
                        if cid in table else float("nan"))
    summary.update({"edge_scale": round(edge_scale, 2), "edge_cpu": args.edge_cpu, "headroom": args.headroom,
                    "latency_quantile": None if args.no_calibration else args.latency_quantile, "delay_ms": args.delay_ms,
                    "loss": args.loss, "sla_schedule": schedule, "node_exit_codes": codes, "crashed": crashed,
                    "command": "approxbit_adaptive_experiment " + " ".join(sys.argv[1:] if argv is None else argv)})
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    plot(run, os.path.join(args.out, "fig9.png"), f"ApproxBit adaptive offloading ({', '.join(phases)} SLA)")
    print(json.dumps(summary, indent=1))
    return 0 if not crashed else 1


if __name__ == "__main__":
    sys.exit(main())
