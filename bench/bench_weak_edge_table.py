#!/usr/bin/env python3
"""Table 1 for a weak edge: the edge halves of every configuration timed inside a CFS CPU quota
(offload_common/cpu_limit.py, e.g. 0.2 and 0.5 of a core, roughly a Jetson-class CPU next to
this machine's), the server halves as profiled (unlimited), and the end-to-end latency by Eq. 1
at 3 / 6 / 50 Mbit/s, for both ApproxBit backbones and for How2Compress; plus the Pareto plots
per bandwidth. Needs root (cgroups).

Per configuration the quota's slowdown is measured, not assumed: a probe (each method's
``experiments/edge_speed.py --per-config``) times the edge model and encoder of every
configuration inside and outside the quota (mean of back-to-back runs: the sustained slowdown of
an edge that is never idle; a median would pick the runs of a few ms that happen to fit in one
CFS period unthrottled), and the lookup table's edge_ms / encode_ms are scaled by those ratios
(the table's own numbers stay the unlimited reference). Rows the nodes do
not run (the H.264 / server-only video baselines of ApproxBit's table) have no probe: they are
scaled by the median ratio of the others and marked ``*``.

    sudo tools/ros_env.sh python bench/bench_weak_edge_table.py [--quotas 0.2,0.5] [--plots docs/figures/weak_edge]
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

from offload_common.lookup_table import LookupTable  # noqa: E402

BANDWIDTHS = (3.0, 6.0, 50.0)
APPROXBIT = ("models/approxbit/cnn3d-actions", "models/approxbit/videomae-actions")
H2C = "models/how2compress/ea-mobilevitv2-050-d2-vtest-bikes"


def probe(prefix, args) -> dict:
    out = subprocess.run(prefix + [sys.executable, "-m"] + args, capture_output=True, text=True, timeout=1800,
                         env={**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")})
    if out.returncode != 0:
        raise RuntimeError(f"probe {args[0]} failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def scaled(lut: LookupTable, free: dict, limited: dict) -> tuple:
    """A copy of ``lut`` with edge_ms / encode_ms scaled per configuration by limited / free; the
    configurations without a probe by the median ratio; returns (table, ratios, estimated ids)."""
    ratios = {}
    for cid, f in free.items():
        total_f = f["edge_ms"] + f["encode_ms"]
        total_l = limited[cid]["edge_ms"] + limited[cid]["encode_ms"]
        ratios[cid] = total_l / total_f if total_f > 0 else 1.0
    median = float(np.median(list(ratios.values())))
    out = copy.deepcopy(lut)
    estimated = []
    for e in out.entries:
        r = ratios.get(e.config_id)
        if r is None:
            r = median
            estimated.append(e.config_id)
        e.edge_ms, e.encode_ms = e.edge_ms * r, e.encode_ms * r
    return out, ratios, estimated


def print_rows(lut: LookupTable, estimated, metric: str) -> None:
    head = (f"{'config':26s} {'bytes':>8s} {metric:>6s} {'edge ms':>8s} {'srv ms':>7s} "
            + " ".join(f"{f'{b:g} Mb/s':>9s}" for b in BANDWIDTHS) + "  beats edge-only at")
    print(head)
    print("-" * len(head))
    edge_only = lut.get("edge_only")
    for e in lut.entries:
        totals = [e.latency_ms(b) for b in BANDWIDTHS]
        wins = [f"{b:g}" for b, t in zip(BANDWIDTHS, totals) if edge_only and e is not edge_only
                and t < edge_only.latency_ms(b)]
        mark = "*" if e.config_id in estimated else " "
        print(f"{e.config_id + mark:26s} {e.bytes:8.0f} {100 * e.accuracy:6.1f} {e.edge_part_ms:8.1f} "
              f"{e.server_part_ms:7.1f} " + " ".join(f"{t:9.1f}" for t in totals)
              + f"  {', '.join(wins) if wins else '-'}")


def pareto_plot(lut: LookupTable, title: str, metric: str, path_prefix: str) -> list:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bench_approxbit_table import pareto

    paths = []
    for b in BANDWIDTHS:
        pts = [(e.latency_ms(b), 100 * e.accuracy) for e in lut.entries]
        fig, ax = plt.subplots(figsize=(7.5, 4.8))
        for e, (t, a) in zip(lut.entries, pts):
            ax.scatter(t, a, s=30, zorder=3, color="black" if e.config_id == "edge_only" else "tab:blue")
            ax.annotate(e.config_id, (t, a), fontsize=6, xytext=(3, 2), textcoords="offset points")
        front = pareto(pts)
        ax.plot([pts[i][0] for i in front], [pts[i][1] for i in front], "--", lw=1, label="Pareto front")
        edge_only = lut.get("edge_only")
        if edge_only:
            ax.axvline(edge_only.latency_ms(b), color="black", lw=0.8, ls=":", label="edge-only latency")
        ax.set_xscale("log")
        ax.set_xlabel("end-to-end latency by Eq. 1 (ms, log)")
        ax.set_ylabel(metric)
        ax.set_title(f"{title} at {b:g} Mbit/s")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
        fig.tight_layout()
        path = f"{path_prefix}_{b:g}mbps.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
    return paths


def main() -> int:
    from offload_common.cpu_limit import CpuLimit, cpu_limit_available

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quotas", default="0.2,0.5", help="edge CPU quotas (cores)")
    ap.add_argument("--clips", type=int, default=30, help="clips / frames per configuration per probe")
    ap.add_argument("--plots", default="docs/figures/weak_edge", help="folder for the Pareto PNGs ('' for none)")
    args = ap.parse_args()
    why = cpu_limit_available()
    if why:
        print(f"bench_weak_edge_table: {why}", file=sys.stderr)
        return 2
    quotas = [float(q) for q in args.quotas.split(",")]
    if args.plots:
        os.makedirs(args.plots, exist_ok=True)
    jobs = [(os.path.basename(p), os.path.join(ROOT, p, "lut_cpu.json"),
             ["approxbit_ros.experiments.edge_speed", "--backbone", os.path.join(ROOT, p), "--per-config",
              "--clips", str(args.clips)]) for p in APPROXBIT]
    h2c_lut = LookupTable.load(os.path.join(ROOT, H2C, "lut_cpu.json"))
    w, h = (int(v) for v in h2c_lut.meta.get("size", "768x576").split("x"))
    jobs.append(("how2compress", os.path.join(ROOT, H2C, "lut_cpu.json"),
                 ["how2compress_ros.experiments.edge_speed", "--model", os.path.join(ROOT, H2C), "--width", str(w),
                  "--height", str(h), "--frames", str(args.clips), "--footage",
                  os.path.join(ROOT, "data", "footage", "vtest.avi"),
                  "--per-config", ",".join(e.config_id for e in h2c_lut.entries)]))
    print(f"command: sudo tools/ros_env.sh python bench/bench_weak_edge_table.py --quotas {args.quotas} "
          f"--clips {args.clips}")
    for name, lut_path, probe_args in jobs:
        lut = LookupTable.load(lut_path)
        metric = "F1" if lut.metric == "f1" else "top-1"
        free = probe([], probe_args)
        for q in quotas:
            with CpuLimit(q) as limit:
                limited = probe(limit.prefix(), probe_args)
            table, ratios, estimated = scaled(lut, free, limited)
            print(f"\n=== {name}: edge inside a {q:g}-core CPU quota (edge halves x {min(ratios.values()):.1f} .. "
                  f"{max(ratios.values()):.1f} measured), server unlimited; Eq. 1 totals in ms "
                  f"({lut_path.replace(ROOT + '/', '')}) ===")
            print_rows(table, estimated, metric)
            if estimated:
                print(f"  * no probe (baseline the nodes do not run): scaled by the median ratio "
                      f"{float(np.median(list(ratios.values()))):.2f}")
            if args.plots:
                for p in pareto_plot(table, f"{name}, edge at {q:g} core", metric,
                                     os.path.join(args.plots, f"{name}_quota{q:g}")):
                    print(f"  wrote {p.replace(ROOT + '/', '')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
