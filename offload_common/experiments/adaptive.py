"""The adaptive-offloading experiment harness (ApproxBit Fig. 9) shared by both streams.

The stream's CLI builds its nodes; this module provides the rest: an "edge" and a "server"
network namespace joined by a tbf-shaped veth pair (plus the user-space delay / loss relay), a
CFS CPU quota for the edge's model node so the edge is the weak device, the monitor's measured
``edge_scale``, the bandwidth trace (levels in turn, fluctuating, repeated) and an SLA schedule
(one phase per SLA kind) or a recorded link (``--trace``, e.g. ``offload_replay --link-trace`` of
a field run), optional link cuts, and the scoring: ``offload_recorder`` records the run to
``bag/`` and the report of that bag (``recording/report.py``, what ``offload_report`` makes) is
the run's summary.json (SLA violations, switches, measured vs predicted latency per rate level
and configuration, fall-back / recovery times), report.html and the Fig. 9-style plot. Needs
root (namespaces, tc, cgroups).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

from offload_common.process_graph import NodeProcess, ProcessGraph, config_path, use_dds_profile


def add_arguments(ap: argparse.ArgumentParser, *, out: str, levels: str, sla_latency_ms: float,
                  sla_accuracy: float, edge_cpu: float, segment_s: float = 40.0) -> None:
    """The options every adaptive experiment has; the stream's CLI passes its own defaults."""
    ap.add_argument("--out", default=out)
    ap.add_argument("--levels", default=levels, help="bandwidth levels (Mbit/s) of a cycle")
    ap.add_argument("--segment-s", type=float, default=segment_s, help="seconds per level")
    ap.add_argument("--repeats", type=int, default=2, help="cycles of the levels")
    ap.add_argument("--fluctuation", type=float, default=0.1, help="+- relative fluctuation within a level")
    ap.add_argument("--step-s", type=float, default=5.0, help="seconds between fluctuation steps")
    ap.add_argument("--phases", default="latency,accuracy", help="SLA kinds, splitting the run in equal parts")
    ap.add_argument("--sla-latency-ms", type=float, default=sla_latency_ms)
    ap.add_argument("--sla-accuracy", type=float, default=sla_accuracy)
    ap.add_argument("--headroom", type=float, default=0.05,
                    help="monitor headroom: a configuration switched to meets a latency SLA with this fraction to spare")
    ap.add_argument("--latency-quantile", type=float, default=0.95,
                    help="the monitor checks a latency SLA against this predicted quantile (calibrated from results)")
    ap.add_argument("--calibration-window", type=int, default=60, help="results per configuration the monitor keeps")
    ap.add_argument("--no-calibration", action="store_true",
                    help="predict from the lookup table x edge_scale only (the uncalibrated monitor)")
    ap.add_argument("--edge-cpu", type=float, default=edge_cpu, help="CPU quota of the edge model node (cores)")
    ap.add_argument("--delay-ms", type=float, default=0.0, help="one-way link delay (user-space relay)")
    ap.add_argument("--loss", type=float, default=0.0, help="frame loss each way (user-space relay)")
    ap.add_argument("--cut-at", type=float, default=-1.0, help="cut the link at this second (negative: never)")
    ap.add_argument("--cut-for", type=float, default=10.0, help="seconds the link stays cut")
    ap.add_argument("--trace", default="",
                    help="play this rate trace (time_s,mbps[,link_up] CSV, e.g. offload_replay --link-trace of a "
                         "field run; rows with link_up 0 cut the link) instead of the levels")
    ap.add_argument("--warmup-s", type=float, default=20.0, help="seconds at the first level before the trace")
    ap.add_argument("--dds-profile", default="",
                    help="Fast DDS XML profile for every node of the run (e.g. config/fastdds_thin_link.xml)")
    ap.add_argument("--payload-budget-mb", type=int, default=64,
                    help="MiB of payloads the run's recording may hold (offload_recorder's payload_budget_bytes)")
    ap.add_argument("--seed", type=int, default=0)


#: seconds between the camera's stop and the first node's: the edge drains its queue (3 s), then
#: one period of Fast DDS's writer heartbeat (3 s by default) passes, the heartbeat that lets a
#: reader which lost the last payload's packet ask for it again. Stopping after 3 s once left the
#: server's result for a payload the recorder never got (24 payloads recorded, 25 results; in CI,
#: not seen again in 13 runs here): a packet lost on the way to the recorder, waiting for that
#: heartbeat, is the one way we know for that
DRAIN_S = 3.0 + 3.5

#: what the adaptive experiments record (payloads within --payload-budget-mb)
RECORDED_TOPICS = ["action_results", "detections", "vqa_answers", "offload_config", "link_receipts", "link_probe",
                   "keyframe_request", "/diagnostics", "/rosout", "/parameter_events", "binary_features",
                   "encoded_frames"]


def load_trace_with_cuts(path: str):
    """A rate trace CSV (``time_s,mbps[,link_up]``) as (RateTrace, [(cut at s, cut for s)]): the
    rows with ``link_up`` 0 become link cuts, from the first such row to the next row with it 1."""
    import csv

    from offload_common.link_trace import RateTrace

    trace = RateTrace.from_csv(path)
    with open(path, newline="") as f:
        rows = [r for r in csv.reader(f) if r and not r[0].lstrip().startswith("#")]
    rows = [r for r in rows if r[0].replace(".", "", 1).lstrip("-").isdigit()]
    cuts, down = [], None
    for r in rows:
        up = len(r) < 3 or r[2].strip() not in ("0", "false", "False")
        t = float(r[0])
        if not up and down is None:
            down = t
        elif up and down is not None:
            cuts.append((down, t - down))
            down = None
    if down is not None:
        cuts.append((down, max(1.0, trace.duration_s - down)))
    return trace, cuts


def print_median_ms(fn: Callable[[], object], runs: int, warmup: int = 2) -> float:
    """Time ``fn`` ``warmup + runs`` times and print the median of the last ``runs`` as
    ``median_ms X`` (what the harness reads back to measure ``edge_scale``); returns it."""
    import numpy as np

    times = []
    for i in range(warmup + runs):
        t = time.perf_counter()
        fn()
        if i >= warmup:
            times.append((time.perf_counter() - t) * 1000)
    median = float(np.median(times))
    print(f"median_ms {median:.3f}", flush=True)
    return median


def _median_ms_under(prefix: List[str], module: str, module_args: List[str], env: dict) -> float:
    """Run ``python -m module`` (which prints ``median_ms X``) under ``prefix`` (a CPU limit or
    nothing) and return X."""
    out = subprocess.run(prefix + [sys.executable, "-m", module] + module_args,
                         capture_output=True, text=True, env=env, timeout=300)
    if out.returncode != 0:
        raise RuntimeError(f"edge speed measurement failed: {out.stderr[-2000:]}")
    return float(out.stdout.split("median_ms")[1])


@dataclass
class ExperimentSetup:
    """What the stream's CLI needs to build its node graphs."""
    env: Dict[str, str]
    server_prefix: List[str]          # server namespace
    edge_prefix: List[str]            # edge namespace
    edge_model_prefix: List[str]      # edge namespace under the CPU quota
    monitor: NodeProcess              # link_monitor, configured for the run
    recorder: NodeProcess             # offload_recorder, recording the run to <out>/bag
    scheduler: NodeProcess            # sla_scheduler, playing the run's SLA schedule


#: the stream's CLI returns (server graph, edge model graph, edge graph, key of the camera node)
GraphBuilder = Callable[[ExperimentSetup], Tuple[ProcessGraph, ProcessGraph, ProcessGraph, str]]


def run_adaptive_experiment(args: argparse.Namespace, *, stream_id: str, lut: str, graphs: GraphBuilder,
                            edge_speed: Tuple[str, List[str]], title: str, metric: str,
                            truth_path: Optional[str] = None, command: str = "", scored: str = "result",
                            truth_answer: Optional[Callable[[str], str]] = None) -> int:
    """Runs the experiment and writes its outputs to ``args.out``; 0 when no node crashed, 2 when
    namespaces or cgroups are missing. ``edge_speed`` = (module, arguments) of a probe that
    prints ``median_ms X`` (``print_median_ms``) for the edge's heaviest model; run inside and
    outside the quota, the ratio is the monitor's ``edge_scale``; ``truth_path`` (the camera's
    ground-truth log) is removed before and scored after; ``scored`` and ``truth_answer`` say which
    records are the stream's results and what a correct one carries (``analysis.load_run``)."""
    from offload_common.cpu_limit import CpuLimit, cpu_limit_available
    from offload_common.link_trace import TracePlayer, fig9_trace
    from offload_common.lookup_table import LookupTable
    from offload_common.netns_link import EmulatedLink, netns_available
    from offload_common.recording.report import EXPERIMENT_FILE, ExperimentInfo, build_report

    if args.dds_profile and not os.path.isfile(args.dds_profile):
        raise FileNotFoundError(f"--dds-profile {args.dds_profile}: no such file")
    why = netns_available() or cpu_limit_available()
    if why:
        print(f"{command.split(' ')[0] or 'adaptive experiment'}: {why}", file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    bag = os.path.abspath(os.path.join(args.out, "bag"))
    if os.path.isdir(bag):
        shutil.rmtree(bag)
    for p in (os.path.join(args.out, "record.jsonl"), truth_path):
        if p and os.path.exists(p):
            os.remove(p)
    levels = [float(x) for x in args.levels.split(",")]
    cuts = [(args.cut_at, args.cut_for)] if args.cut_at >= 0 else []
    if args.trace:
        trace, trace_cuts = load_trace_with_cuts(args.trace)
        cuts = sorted(cuts + trace_cuts)
    else:
        trace = fig9_trace(args.segment_s, levels, args.repeats, args.fluctuation, args.step_s, args.seed)
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    span = trace.duration_s / len(phases)
    schedule = ",".join(f"{i * span:g}:{k}:{args.sla_latency_ms if k == 'latency' else args.sla_accuracy:g}"
                        for i, k in enumerate(phases))
    events: List[Tuple[float, str]] = []
    with EmulatedLink(rate_mbps=trace.steps[0][1], delay_ms=args.delay_ms, loss=args.loss, seed=args.seed) as link, \
            CpuLimit(args.edge_cpu) as edge_cpu:
        env = use_dds_profile(link.dds_env(), os.path.abspath(args.dds_profile) if args.dds_profile else None)
        scale = _median_ms_under(edge_cpu.prefix(), *edge_speed, env) / _median_ms_under([], *edge_speed, env)
        print(f"edge CPU quota {args.edge_cpu:g} core: edge_scale {scale:.2f}", flush=True)
        t0 = time.time() + args.warmup_s + 15.0          # after model loading and warm-up
        setup = ExperimentSetup(
            env, link.prefix("server"), link.prefix("edge"), edge_cpu.prefix() + link.prefix("edge"),
            NodeProcess("link_monitor", "link_monitor", config_path("link_monitor.yaml"), overrides={
                "lookup_tables": os.path.abspath(lut), "stream_id": stream_id, "edge_scale": scale,
                "sla_kind": phases[0], "sla_latency_ms": args.sla_latency_ms, "sla_accuracy": args.sla_accuracy,
                "log_period_s": 5.0, "headroom": args.headroom, "latency_quantile": args.latency_quantile,
                "calibration_window": args.calibration_window, "calibrate_from_results": not args.no_calibration}),
            NodeProcess("offload_recorder", "offload_recorder", config_path("offload_recorder.yaml"),
                        overrides={"output": bag, "topics": RECORDED_TOPICS,
                                   "payload_budget_bytes": args.payload_budget_mb << 20}),
            NodeProcess("sla_scheduler", "sla_scheduler", config_path("sla_scheduler.yaml"),
                        overrides={"sla_schedule": schedule, "start_unix_s": t0}))
        server, edge_model, edge, camera = graphs(setup)
        all_graphs = (server, edge_model, edge)
        try:
            for g in all_graphs:
                g.start()
            time.sleep(max(0.0, t0 - time.time()))
            print(f"trace: {trace.duration_s:.0f} s, levels {levels} Mbit/s; SLA schedule {schedule}", flush=True)
            player = TracePlayer(trace, link.set_rate, lambda e: print(f"rate change failed: {e}", flush=True))
            player.start(t0)
            pending = list(cuts)
            while not player.wait(0.2):
                now = time.time() - t0
                if pending and now >= pending[0][0]:
                    _, cut_for = pending.pop(0)
                    link.set_up(False)
                    events.append((time.time(), "cut"))
                    print(f"{now:.0f} s: link cut", flush=True)
                    time.sleep(cut_for)
                    link.set_up(True)
                    events.append((time.time(), "restore"))
                    print(f"{time.time() - t0:.0f} s: link restored", flush=True)
            edge.stop_one(camera)
            time.sleep(DRAIN_S)
        finally:
            codes = {}
            # a node under the edge's CPU quota also shuts down that much slower (h2c_edge under 0.25 core:
            # 6 s after SIGINT, so the default 5 s grace killed it and the run counted a crash)
            grace = max(5.0, 5.0 / args.edge_cpu)
            # the payloads' producer first, then the recorder and the monitor (a result still on its way is
            # recorded), the server last (its link_echo answers the monitor's probes until the monitor stops)
            for g in (edge_model, edge, server):
                codes.update(g.stop(grace=grace))
            for g in all_graphs:
                for key in g.lines:
                    with open(os.path.join(args.out, f"{key}.log"), "w") as f:
                        f.write(g.output(key))
        crashed = {k: c for k, c in codes.items() if c not in (0, -2, 130)}
    info = ExperimentInfo(t0=t0, rates=[list(r) for r in player.applied], events=[list(e) for e in events],
                          levels=sorted(levels), scored=scored, title=f"{title} ({', '.join(phases)} SLA)", metric=metric)
    info.save(os.path.join(args.out, EXPERIMENT_FILE))
    table = {e.config_id: e for e in LookupTable.load(lut).entries}
    summary = build_report(bag, args.out, truth_path, info, truth_answer,
                           lambda cid, bw, delay: table[cid].latency_ms(bw, delay, scale) if cid in table else float("nan"),
                           extra={"edge_scale": round(scale, 2), "edge_cpu": args.edge_cpu, "headroom": args.headroom,
                                  "latency_quantile": None if args.no_calibration else args.latency_quantile,
                                  "delay_ms": args.delay_ms, "loss": args.loss, "sla_schedule": schedule,
                                  "scored": scored, "dds_profile": args.dds_profile, "trace": args.trace,
                                  "node_exit_codes": codes, "crashed": crashed, "command": command})
    print(json.dumps(summary, indent=1))
    return 0 if not crashed else 1
