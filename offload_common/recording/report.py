"""One report of a recorded run (``offload_report``): a JSON summary and a self-contained HTML
page with its figures embedded.

The scoring is the adaptive experiments' own (``experiments/analysis.py``: SLA violations,
switches, measured vs predicted latency, link-cut timings, accuracy against the camera's ground
truth); this module adds what a field run needs without an experiment around it: the link's
outages as the monitor saw them (``link_up`` going false) with fall-back and recovery times,
per-configuration latency percentiles and payload sizes, the payload bitrate from the link
receipts, and the reason of every switch. An ``experiment.json`` beside the recording (written by
the adaptive harness) adds what only the harness knows: the shaped rate, the cut / restore times,
time zero and the rate levels.
"""
from __future__ import annotations

import base64
import html
import io
import json
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from offload_common.experiments.analysis import Run, load_run, plot, score, summarize
from offload_common.recording.bag_reader import read_recording

EXPERIMENT_FILE = "experiment.json"


@dataclass
class ExperimentInfo:
    """What the adaptive harness knows and the recording does not."""
    t0: float = 0.0
    rates: List[List[float]] = field(default_factory=list)      # (unix s, Mbit/s) applied
    events: List[List] = field(default_factory=list)            # (unix s, "cut" / "restore")
    levels: List[float] = field(default_factory=lambda: [3.0, 6.0, 50.0])
    scored: str = "result"
    title: str = ""
    metric: str = "top-1"

    def save(self, path: str) -> None:
        with open(path, "w") as f:
            json.dump(self.__dict__, f, indent=1)

    @classmethod
    def load(cls, path: str) -> "ExperimentInfo":
        with open(path) as f:
            return cls(**json.load(f))


def topic_counts(recording: str) -> Dict[str, int]:
    return dict(Counter(m.topic for m in read_recording(recording, decode=False)))


def load_recorded_run(recording: str, truth: Optional[str] = None, info: Optional[ExperimentInfo] = None,
                      truth_answer: Optional[Callable[[str], str]] = None) -> Run:
    info = info or ExperimentInfo()
    return load_run(recording, truth, [tuple(r) for r in info.rates], [tuple(e) for e in info.events], info.t0,
                    scored=info.scored, truth_answer=truth_answer)


def outages(run: Run) -> List[dict]:
    """Link outages as the monitor saw them: from the first decision with ``link_up`` false to the
    first with it true again; with the seconds until the monitor decided edge-only and, after the
    link came back, until it decided an offloading configuration again."""
    out, start = [], None
    for d in run.decisions:
        t = d["recv_ns"] / 1e9
        if not d["link_up"] and start is None:
            start = t
            fallback = None
        if start is not None and not d["link_up"] and fallback is None and d["config_id"] == "edge_only":
            fallback = t
        if start is not None and d["link_up"]:
            back = next((x["recv_ns"] / 1e9 for x in run.decisions
                         if x["recv_ns"] / 1e9 >= t and x["config_id"] != "edge_only"), None)
            out.append({"down_at_s": round(start - run.t0, 2), "up_at_s": round(t - run.t0, 2),
                        "down_for_s": round(t - start, 2),
                        "edge_only_after_s": round(fallback - start, 2) if fallback is not None else None,
                        "offloading_again_after_s": round(back - t, 2) if back is not None else None})
            start = None
    if start is not None:
        out.append({"down_at_s": round(start - run.t0, 2), "up_at_s": None, "down_for_s": None,
                    "edge_only_after_s": round(fallback - start, 2) if fallback is not None else None,
                    "offloading_again_after_s": None})
    return out


def per_configuration(run: Run) -> List[dict]:
    rows = score(run)
    by = defaultdict(list)
    for r, res in zip(rows, run.results):
        by[r["config_id"]].append((r, res))
    out = []
    for cid, items in sorted(by.items()):
        lat = np.array([r["total_ms"] for r, _ in items])
        correct = [r["correct"] for r, _ in items if r["correct"] is not None]
        out.append({"config_id": cid, "results": len(items),
                    "latency_p50_ms": round(float(np.percentile(lat, 50)), 1),
                    "latency_p90_ms": round(float(np.percentile(lat, 90)), 1),
                    "latency_p99_ms": round(float(np.percentile(lat, 99)), 1),
                    "edge_ms_p50": round(float(np.median([x["edge_ms"] + x["queue_ms"] for _, x in items])), 1),
                    "link_ms_p50": round(float(np.median([x["transmit_ms"] for _, x in items])), 1),
                    "server_ms_p50": round(float(np.median([x["server_ms"] for _, x in items])), 1),
                    "payload_bytes_mean": round(float(np.mean([x["payload_bytes"] for _, x in items])), 1),
                    "violations": sum(bool(r["violated"]) for r, _ in items),
                    "accuracy": round(float(np.mean(correct)), 4) if correct else None})
    return out


def payload_receipts(receipts: Sequence[dict]) -> List[dict]:
    """The servers' receipts of payloads (``link_echo`` answers the monitor's probes with
    receipts too, configuration id ``probe``)."""
    return [r for r in receipts if r["config_id"] != "probe"]


def payload_bitrate(receipts: Sequence[dict], bin_s: float = 1.0) -> dict:
    """Payload kbit/s received per ``bin_s`` (from the servers' receipts): mean, p95, max, and the series."""
    if not receipts:
        return {"mean_kbps": None, "p95_kbps": None, "max_kbps": None, "series": []}
    t = np.array([r["recv_ns"] / 1e9 for r in receipts])
    size = np.array([r["size_bytes"] for r in receipts], dtype=float)
    edges = np.arange(t.min(), t.max() + bin_s, bin_s)
    if len(edges) < 2:
        edges = np.array([t.min(), t.min() + bin_s])
    kbps = np.histogram(t, edges, weights=size)[0] * 8 / 1000 / bin_s
    return {"mean_kbps": round(float(kbps.mean()), 1), "p95_kbps": round(float(np.percentile(kbps, 95)), 1),
            "max_kbps": round(float(kbps.max()), 1), "series": [(float(a), float(b)) for a, b in zip(edges, kbps)]}


def switch_reasons(run: Run, limit: int = 200) -> List[dict]:
    """Each change of the chosen configuration with the monitor's reason."""
    out, last = [], None
    for d in run.decisions:
        if d["config_id"] != last:
            out.append({"t_s": round(d["recv_ns"] / 1e9 - run.t0, 2), "config_id": d["config_id"],
                        "reason": d["reason"], "bandwidth_mbps": round(d["bandwidth_mbps"], 3),
                        "link_up": d["link_up"]})
            last = d["config_id"]
    return out[:limit]


def build_summary(run: Run, recording: str, info: ExperimentInfo, receipts: Sequence[dict],
                  table_latency: Optional[Callable[[str, float, float], float]] = None) -> dict:
    """``receipts``: the servers' payload receipts (``payload_receipts``)."""
    summary = summarize(run, sorted(info.levels), table_latency)
    rate = payload_bitrate(receipts)
    span = [d["recv_ns"] for d in run.decisions] + [r["recv_ns"] for r in run.results]
    summary.update({
        "recording": os.path.abspath(recording), "topics": topic_counts(recording),
        "duration_s": round((max(span) - min(span)) / 1e9, 1) if span else 0.0,
        "outages": outages(run), "per_configuration": per_configuration(run),
        "payload_bitrate": {k: v for k, v in rate.items() if k != "series"},
        "payloads_received": len(receipts), "payloads_rejected": sum(not r["ok"] for r in receipts),
        "switch_reasons": switch_reasons(run)})
    return summary


# ----------------------------------------------------------------------------------------------- figures

def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _shade_outages(ax, run: Run) -> None:
    for o in outages(run):
        end = o["up_at_s"] if o["up_at_s"] is not None else ax.get_xlim()[1]
        ax.axvspan(o["down_at_s"], end, color="red", alpha=0.12, lw=0)


def figures(run: Run, info: ExperimentInfo, receipts: Sequence[dict], fig9_path: str) -> List[tuple]:
    """(title, base64 PNG) of each figure of the report; the Fig. 9-style panel is also kept as
    ``fig9_path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plot(run, fig9_path, info.title or "offloading run", info.metric)
    with open(fig9_path, "rb") as f:
        out = [("Link estimate, chosen configuration, latency and accuracy against the SLA",
                base64.b64encode(f.read()).decode())]

    rows = run.results
    fig, ax = plt.subplots(figsize=(12, 4))
    if rows:
        t = np.array([r["stamp_ns"] / 1e9 - run.t0 for r in rows])
        order = np.argsort(t)
        parts = [np.array([r["edge_ms"] + r["queue_ms"] for r in rows])[order],
                 np.array([r["transmit_ms"] for r in rows])[order],
                 np.array([r["server_ms"] for r in rows])[order]]
        ax.stackplot(t[order], *parts, labels=["edge (queue + model + encode)", "link", "server (decode + model)"],
                     alpha=0.8)
        ax.plot(t[order], np.array([r["total_ms"] for r in rows])[order], "k.", ms=2, label="total (measured)")
        _shade_outages(ax, run)
    ax.set_xlabel("capture time (s)")
    ax.set_ylabel("ms")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    out.append(("Latency of every result by stage (outages shaded)", _png(fig)))

    rate = payload_bitrate(receipts)
    fig, ax = plt.subplots(figsize=(12, 3.5))
    if rate["series"]:
        ts, kbps = zip(*rate["series"])
        ax.step(np.array(ts) - run.t0, kbps, where="post", label="payload kbit/s received")
    if run.decisions:
        ax.plot([d["recv_ns"] / 1e9 - run.t0 for d in run.decisions],
                [d["bandwidth_mbps"] * 1000 for d in run.decisions], ".", ms=3, label="link estimate (kbit/s)")
    if run.rates:
        ax.step([t - run.t0 for t, _ in run.rates], [r * 1000 for _, r in run.rates], where="post",
                lw=0.8, label="shaped rate (kbit/s)")
    _shade_outages(ax, run)
    ax.set_yscale("symlog", linthresh=0.1)
    ax.set_xlabel("time (s)")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    out.append(("Payload bitrate and the link", _png(fig)))

    per = per_configuration(run)
    fig, ax = plt.subplots(figsize=(12, 3.5))
    if per:
        x = np.arange(len(per))
        ax.set_xlim(-0.7, max(len(per), 3) - 0.3)
        for i, q in enumerate(("p50", "p90", "p99")):
            ax.bar(x + (i - 1) * 0.27, [p[f"latency_{q}_ms"] for p in per], 0.27, label=q)
        ax.set_xticks(x)
        ax.set_xticklabels([p["config_id"] for p in per], fontsize=8, rotation=15)
        ax.set_yscale("log")
    ax.set_ylabel("latency ms")
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.append(("Latency percentiles per configuration", _png(fig)))
    return out


# ----------------------------------------------------------------------------------------------- HTML

def _table(rows: List[dict], columns: Optional[Sequence[str]] = None) -> str:
    if not rows:
        return "<p><i>none</i></p>"
    cols = list(columns or rows[0].keys())
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(c)))}</td>" for c in cols) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def write_html(path: str, summary: dict, figs: List[tuple], title: str) -> None:
    sla = [{"SLA": k, **{c: summary[f"{k}_sla"][c] for c in ("results", "violations", "violation_rate",
                                                               "measured_accuracy", "latency_p50_ms",
                                                               "latency_p95_ms")}}
           for k in ("latency", "accuracy")]
    overview = [{"duration_s": summary["duration_s"], "results": summary["results"],
                 "switches": summary["switches"], "switches_per_min": summary["switches_per_min"],
                 "payloads_received": summary["payloads_received"], "payloads_rejected": summary["payloads_rejected"],
                 "mean_kbps": summary["payload_bitrate"]["mean_kbps"], "p95_kbps": summary["payload_bitrate"]["p95_kbps"]}]
    parts = [f"<h1>{html.escape(title)}</h1>", f"<p>recording <code>{html.escape(summary['recording'])}</code></p>",
             "<h2>Overview</h2>", _table(overview), "<h2>SLA</h2>", _table(sla)]
    for name, b64 in figs:
        parts += [f"<h2>{html.escape(name)}</h2>", f'<img alt="{html.escape(name)}" src="data:image/png;base64,{b64}">']
    parts += ["<h2>Per configuration</h2>", _table(summary["per_configuration"]),
              "<h2>Link outages (as the monitor saw them)</h2>", _table(summary["outages"])]
    if summary.get("link_cut"):
        parts += ["<h2>Link cuts (the harness's, with its timings)</h2>", _table(summary["link_cut"])]
    if summary.get("prediction"):
        parts += ["<h2>Measured vs predicted latency per rate level</h2>", _table(summary["prediction"])]
    parts += ["<h2>Switches and their reasons</h2>", _table(summary["switch_reasons"]),
              "<h2>Messages per topic</h2>", _table([{"topic": k, "messages": v} for k, v in summary["topics"].items()])]
    style = ("body{font-family:sans-serif;margin:2em;max-width:1300px}table{border-collapse:collapse;margin:0.5em 0}"
             "td,th{border:1px solid #bbb;padding:2px 8px;font-size:13px;text-align:right}"
             "th{background:#eee}img{max-width:100%;border:1px solid #ddd}")
    with open(path, "w") as f:
        f.write(f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
                f"<style>{style}</style></head><body>{''.join(parts)}</body></html>\n")


def build_report(recording: str, out_dir: str, truth: Optional[str] = None, info: Optional[ExperimentInfo] = None,
                 truth_answer: Optional[Callable[[str], str]] = None,
                 table_latency: Optional[Callable[[str, float, float], float]] = None,
                 extra: Optional[dict] = None) -> dict:
    """Writes ``report.html``, ``summary.json`` and ``fig9.png`` to ``out_dir``; returns the summary."""
    if info is None:
        side = os.path.join(os.path.dirname(os.path.abspath(recording)), EXPERIMENT_FILE)
        info = ExperimentInfo.load(side) if os.path.exists(side) else ExperimentInfo()
    run = load_recorded_run(recording, truth, info, truth_answer)
    if not info.t0 and run.decisions:
        run.t0 = run.decisions[0]["recv_ns"] / 1e9
    from offload_common.recording.records import load_records

    receipts = payload_receipts(load_records(recording)["receipt"])
    summary = build_summary(run, recording, info, receipts, table_latency)
    summary.update(extra or {})
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    figs = figures(run, info, receipts, os.path.join(out_dir, "fig9.png"))
    write_html(os.path.join(out_dir, "report.html"), summary, figs,
               info.title or f"offloading run {os.path.basename(os.path.abspath(recording))}")
    return summary
