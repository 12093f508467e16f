#!/usr/bin/env python3
"""ApproxBit Table 1 on our models: every configuration and baseline from the profiler's lookup
table — payload bytes, compression ratio, top-1 / top-5 on the test split, edge and server ms,
and the total latency by Eq. 1 at 3, 6 and 50 Mbit/s — plus an accuracy-vs-latency Pareto plot
per bandwidth (PNG).

Bytes: what the edge sends, mean per clip: range-coded for the binary configurations with an
entropy model (``packed``: the same bits packed eight to a byte, as the paper sends them).
Ratio: against the float32 feature map at the configuration's offload point (ApproxBit, DNN-
Surgery, DeepCOD), against the raw uint8 clip for video baselines.

    tools/ros_env.sh python bench/bench_approxbit_table.py [--lut ...] [--plots docs/figures]
    (the lookup table comes from: approxbit_profile --backbone ... --out ...)
"""
from __future__ import annotations

import argparse
import os
import sys

from offload_common.lookup_table import LookupTable

LUT = "models/approxbit/cnn3d-actions/lut_cpu.json"
BANDWIDTHS = (3.0, 6.0, 50.0)


def ratio(lut: LookupTable, e) -> str:
    if e.bytes <= 0:
        return "-"
    if e.config_id.startswith(("h264/", "server_only/")):
        raw = lut.get("server_only/raw")
        return f"{raw.bytes / e.bytes:.0f}x raw" if raw else "-"
    o = e.config_id.split("/")[1][1:]
    ref = lut.meta.get("float32_map_bytes", {}).get(o)
    return f"{ref / e.bytes:.0f}x" if ref else "-"


def label(e) -> str:
    names = {"binary": "ApproxBit", "deepcod": "DeepCOD", "float32": "DNN-Surgery", "edge_only": "Edge-only"}
    if e.config_id.startswith("h264/"):
        return "H.264"
    if e.config_id.startswith("server_only/"):
        return "Server-only"
    return names.get(e.method, e.method)


def print_table(lut: LookupTable) -> None:
    head = (f"{'method':12s} {'config':24s} {'bytes':>8s} {'packed':>7s} {'ratio':>10s} {'top-1':>6s} {'top-5':>6s} "
            f"{'edge ms':>8s} {'srv ms':>7s} " + " ".join(f"{f'{b:g} Mb/s':>9s}" for b in BANDWIDTHS))
    print(f"backbone {lut.meta.get('backbone')}, {lut.meta.get('device')}; {lut.entries[0].extra.get('clips')} "
          f"test clips; Eq. 1 totals in ms")
    print(head)
    print("-" * len(head))
    for e in lut.entries:
        totals = " ".join(f"{e.latency_ms(b):9.1f}" for b in BANDWIDTHS)
        packed = f"{e.extra['packed_bytes']:7.0f}" if "packed_bytes" in e.extra else f"{'':7s}"
        print(f"{label(e):12s} {e.config_id:24s} {e.bytes:8.0f} {packed} {ratio(lut, e):>10s} {100 * e.accuracy:6.1f} "
              f"{100 * e.extra.get('top5', 0):6.1f} {e.edge_part_ms:8.2f} {e.server_part_ms:7.2f} "
              f"{totals}")


def pareto(points):
    """Indices of points (latency, accuracy) not dominated by another."""
    front = []
    for i, (t, a) in enumerate(points):
        if not any((t2 <= t and a2 >= a) and (t2, a2) != (t, a) for t2, a2 in points):
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def plot(lut: LookupTable, folder: str) -> list:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(folder, exist_ok=True)
    colours = {"ApproxBit": "tab:blue", "DeepCOD": "tab:orange", "DNN-Surgery": "tab:red", "Edge-only": "black",
               "Server-only": "tab:gray", "H.264": "tab:green"}
    paths = []
    for b in BANDWIDTHS:
        pts = [(e.latency_ms(b), 100 * e.accuracy) for e in lut.entries]
        fig, ax = plt.subplots(figsize=(7.5, 4.8))
        for e, (t, a) in zip(lut.entries, pts):
            ax.scatter(t, a, color=colours.get(label(e), "tab:purple"), s=30, zorder=3)
            ax.annotate(e.config_id.replace(f"{lut.meta.get('backbone')}/", ""), (t, a), fontsize=6,
                        xytext=(3, 2), textcoords="offset points")
        front = pareto(pts)
        ax.plot([pts[i][0] for i in front], [pts[i][1] for i in front], "--", color="tab:blue", lw=1,
                label="Pareto front")
        for name, c in colours.items():
            ax.scatter([], [], color=c, label=name)
        ax.set_xscale("log")
        ax.set_xlabel("end-to-end latency by Eq. 1 (ms, log)")
        ax.set_ylabel("top-1 accuracy (%)")
        ax.set_title(f"ApproxBit vs baselines at {b:g} Mbit/s ({lut.meta.get('backbone')}, synthetic actions)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
        path = os.path.join(folder, f"approxbit_{lut.meta.get('backbone', 'model')}_pareto_{b:g}mbps.png")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lut", default=LUT)
    ap.add_argument("--plots", default="docs/figures", help="folder for the Pareto PNGs ('' for none)")
    args = ap.parse_args()
    if not os.path.isfile(args.lut):
        print(f"no lookup table at {args.lut}: run approxbit_profile first", file=sys.stderr)
        return 1
    lut = LookupTable.load(args.lut)
    print_table(lut)
    if args.plots:
        for p in plot(lut, args.plots):
            print(f"wrote {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
