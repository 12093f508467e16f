"""Scoring an adaptive-offloading run: results joined with the camera's ground truth (when the
stream has one: ApproxBit's action clips, scored as action labels or as the answers to a VQA
question), the monitor's decisions and the bandwidth trace; SLA violations, switches, prediction
error, fallback / recovery times; and the Fig. 9-style plot. Plain Python over the recorder's
JSON lines.
"""
from __future__ import annotations

import bisect
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

CLIP_FRAMES = 16


@dataclass
class Run:
    results: List[dict]
    decisions: List[dict]
    slas: List[dict]
    truth: Dict[int, Tuple[int, str]]              # capture stamp ns -> (frame index, label)
    rates: List[Tuple[float, float]] = field(default_factory=list)   # (unix s, Mbit/s) applied
    events: List[Tuple[float, str]] = field(default_factory=list)    # (unix s, "cut" / "restore")
    t0: float = 0.0                                                  # experiment start, unix s
    # ground-truth label -> the result a correct clip carries (VQA: the answer); None: the label
    truth_answer: Optional[Callable[[str], str]] = None
    clip_labels: Dict[int, str] = field(init=False)                  # dataset clip index -> label
    decision_ns: List[int] = field(init=False)                       # receive times of the decisions

    def __post_init__(self):
        self.decisions.sort(key=lambda d: d["recv_ns"])
        self.clip_labels = {i // CLIP_FRAMES: lbl for i, lbl in self.truth.values()}
        self.decision_ns = [d["recv_ns"] for d in self.decisions]


def load_run(record_path: str, truth_path: Optional[str], rates=(), events=(), t0: float = 0.0,
             scored: str = "result", truth_answer: Optional[Callable[[str], str]] = None) -> Run:
    """``record_path`` is a recording (``offload_recorder``'s bag folder; ``recording.records``)
    or, for runs made before there was one, the old recorder's JSON lines (``*.jsonl``).
    ``scored`` is the record type scored as the stream's results: ``result`` (action labels,
    detections) or ``answer`` (VQA answers, whose expected value ``truth_answer`` derives from the
    clip's ground-truth label)."""
    if scored not in ("result", "answer"):
        raise ValueError(f"scored must be 'result' or 'answer', not {scored!r}")
    if record_path.endswith(".jsonl"):
        records = {"result": [], "answer": [], "decision": [], "sla": []}
        with open(record_path) as f:
            for line in f:
                r = json.loads(line)
                records.setdefault(r["type"], []).append(r)
    else:
        from offload_common.recording.records import load_records

        records = load_records(record_path)
    results, decisions, slas = records[scored], records["decision"], records.get("sla", [])
    truth = {}
    if truth_path:
        with open(truth_path) as f:
            for line in f:
                stamp, index, label = line.rstrip("\n").split(" ", 2)
                truth[int(stamp)] = (int(index), label)
    results.sort(key=lambda r: r["recv_ns"])
    return Run(results, decisions, slas, truth, list(rates), list(events), t0, truth_answer)


def expected_label(run: Run, stamp_ns: int) -> Optional[str]:
    """Ground truth of the clip whose newest frame was captured at ``stamp_ns``: the class of the
    dataset clip most of its 16 frames came from (frames the edge dropped shift a clip against the
    dataset's clip grid; with no drops every clip is aligned), or what ``run.truth_answer`` makes
    of it."""
    truth = run.truth.get(stamp_ns)
    if truth is None:
        return None
    index = truth[0]
    clip = index // CLIP_FRAMES if index % CLIP_FRAMES >= CLIP_FRAMES // 2 else index // CLIP_FRAMES - 1
    label = run.clip_labels.get(clip)
    return run.truth_answer(label) if label is not None and run.truth_answer else label


def decision_at(run: Run, t_ns: int) -> Optional[dict]:
    """The latest decision received at or before ``t_ns``."""
    i = bisect.bisect_right(run.decision_ns, t_ns) - 1
    return run.decisions[i] if i >= 0 else None


def prediction_for(run: Run, config_id: str, t_ns: int) -> Optional[dict]:
    """The latest decision for ``config_id`` at or before ``t_ns`` (its predicted latency is the
    monitor's Eq. 1 for that configuration with the link estimate of that moment)."""
    for i in range(bisect.bisect_right(run.decision_ns, t_ns) - 1, -1, -1):
        if run.decisions[i]["config_id"] == config_id:
            return run.decisions[i]
    return None


def score(run: Run) -> List[dict]:
    """One row per result: correctness (None when the clip is not aligned with a ground-truth
    clip), SLA in force at capture, violation, predicted latency of its configuration."""
    rows = []
    for r in run.results:
        d = decision_at(run, r["stamp_ns"])
        p = prediction_for(run, r["config_id"], r["recv_ns"])
        correct = None
        expected = expected_label(run, r["stamp_ns"])
        if expected is not None:
            correct = expected == r["label"]
        row = {"t": r["stamp_ns"] / 1e9 - run.t0, "config_id": r["config_id"], "total_ms": r["total_ms"],
               "correct": correct, "stamp_ns": r["stamp_ns"], "sla_kind": d["sla_kind"] if d else None,
               "predicted_ms": p["predicted_latency_ms"] if p else None,
               "predicted_tail_ms": p.get("predicted_latency_tail_ms") if p else None,
               "predicted_link": (p["bandwidth_mbps"], p["link_delay_ms"]) if p else None,
               "predicted_accuracy": p["predicted_accuracy"] if p else None,
               "bandwidth_mbps": d["bandwidth_mbps"] if d else None}
        violated = None
        if d is not None and d["sla_kind"] == "latency":
            violated = r["total_ms"] > d["sla_latency_ms"]
            row["bound"] = d["sla_latency_ms"]
        elif d is not None and p is not None:
            violated = p["predicted_accuracy"] < d["sla_accuracy"]     # the configuration's profiled accuracy
            row["bound"] = d["sla_accuracy"]
        row["violated"] = violated
        row["feasible"] = d["sla_feasible"] if d else None
        rows.append(row)
    return rows


def rate_level(rate: float, levels: Sequence[float]) -> float:
    return min(levels, key=lambda lv: abs(np.log(rate / lv)))


def summarize(run: Run, levels: Sequence[float] = (3.0, 6.0, 50.0),
              table_latency: Optional[Callable[[str, float, float], float]] = None) -> dict:
    """``table_latency(config_id, bandwidth_mbps, delay_ms)``, when given, is the uncalibrated Eq. 1
    from the lookup table, reported beside the monitor's prediction."""
    rows = score(run)
    out: dict = {"results": len(rows)}
    stamps = Counter(r["stamp_ns"] for r in run.results)
    out["duplicate_results"] = sum(c - 1 for c in stamps.values())
    scored = [r for r in rows if r["correct"] is not None]
    out["scored_results"] = len(scored)
    aligned = [r for r in run.results if r["stamp_ns"] in run.truth
               and run.truth[r["stamp_ns"]][0] % CLIP_FRAMES == CLIP_FRAMES - 1]
    out["clip_aligned_fraction"] = round(len(aligned) / len(run.results), 3) if run.results and run.truth else None
    for kind in ("latency", "accuracy"):
        sel = [r for r in rows if r["sla_kind"] == kind and r["violated"] is not None]
        feas = [r for r in sel if r["feasible"]]
        acc = [r["correct"] for r in sel if r["correct"] is not None]
        out[f"{kind}_sla"] = {
            "results": len(sel), "violations": sum(r["violated"] for r in sel),
            "violation_rate": round(sum(r["violated"] for r in sel) / len(sel), 4) if sel else None,
            "results_while_feasible": len(feas),
            "violation_rate_while_feasible": round(sum(r["violated"] for r in feas) / len(feas), 4) if feas else None,
            "measured_accuracy": round(float(np.mean(acc)), 4) if acc else None,
            "latency_p50_ms": round(float(np.median([r["total_ms"] for r in sel])), 1) if sel else None,
            "latency_p95_ms": round(float(np.percentile([r["total_ms"] for r in sel], 95)), 1) if sel else None}
    # switches: changes of the decided configuration
    configs = [d["config_id"] for d in run.decisions]
    switches = sum(1 for a, b in zip(configs, configs[1:]) if a != b)
    span_min = ((run.decisions[-1]["recv_ns"] - run.decisions[0]["recv_ns"]) / 6e10) if len(run.decisions) > 1 else 0
    out["switches"] = switches
    out["switches_per_min"] = round(switches / span_min, 2) if span_min else None
    out["prediction"] = prediction_error(run, rows, levels, table_latency)
    out["link_cut"] = cut_times(run)
    return out


def prediction_error(run: Run, rows: List[dict], levels: Sequence[float],
                     table_latency: Optional[Callable[[str, float, float], float]] = None) -> List[dict]:
    """Median measured vs median predicted latency per (rate level, configuration) while the
    shaped rate was at that level (results captured at least 3 s after a level change); also the
    measured 90th percentile against the predicted tail, and the table-only prediction."""
    if not run.rates:
        return []
    times = [t for t, _ in run.rates]
    groups = defaultdict(list)
    for r in rows:
        if r["predicted_ms"] is None or r["config_id"] == "edge_only":
            continue
        t = r["stamp_ns"] / 1e9
        i = bisect.bisect_right(times, t) - 1
        if i < 0:
            continue
        level = rate_level(run.rates[i][1], levels)
        # time since the level (not just the fluctuating step) started
        j = i
        while j > 0 and rate_level(run.rates[j - 1][1], levels) == level:
            j -= 1
        if t - times[j] < 3.0:
            continue
        groups[(level, r["config_id"])].append(r)
    out = []
    for (level, cid), sel in sorted(groups.items()):
        if len(sel) < 5:
            continue
        meas = float(np.median([r["total_ms"] for r in sel]))
        pred = float(np.median([r["predicted_ms"] for r in sel]))
        row = {"rate_mbps": level, "config_id": cid, "results": len(sel), "measured_p50_ms": round(meas, 1),
               "predicted_p50_ms": round(pred, 1), "error": round((meas - pred) / pred, 3)}
        tails = [r["predicted_tail_ms"] for r in sel if r.get("predicted_tail_ms")]
        if tails:
            row["measured_p90_ms"] = round(float(np.percentile([r["total_ms"] for r in sel], 90)), 1)
            row["predicted_tail_ms"] = round(float(np.median(tails)), 1)
        if table_latency is not None:
            table = float(np.median([table_latency(cid, *r["predicted_link"]) for r in sel]))
            row["table_p50_ms"], row["table_error"] = round(table, 1), round((meas - table) / table, 3)
        out.append(row)
    return out


def cut_times(run: Run) -> List[dict]:
    """For each link cut: seconds until the monitor decided edge_only, and after the restore until
    it decided an offloading configuration again."""
    out = []
    cuts = [t for t, e in run.events if e == "cut"]
    restores = [t for t, e in run.events if e == "restore"]
    for tc, tr in zip(cuts, restores):
        fb = next((d["recv_ns"] / 1e9 for d in run.decisions
                   if d["recv_ns"] / 1e9 >= tc and d["config_id"] == "edge_only" and not d["link_up"]), None)
        up = next((d for d in run.decisions if d["recv_ns"] / 1e9 >= tr and d["link_up"]), None)
        back = next((d for d in run.decisions if d["recv_ns"] / 1e9 >= tr and d["config_id"] != "edge_only"), None)
        out.append({"fallback_s": round(fb - tc, 2) if fb else None,
                    "link_up_again_s": round(up["recv_ns"] / 1e9 - tr, 2) if up else None,
                    "choice_after_restore": up["config_id"] if up else None,
                    "offloading_again_s": round(back["recv_ns"] / 1e9 - tr, 2) if back else None})
    return out


def plot(run: Run, path: str, title: str = "", metric: str = "top-1") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = score(run)
    fig, ax = plt.subplots(4, 1, figsize=(12, 10), sharex=True)
    if run.rates:
        ts = [t - run.t0 for t, _ in run.rates]
        ax[0].step(ts, [r for _, r in run.rates], where="post", label="shaped rate")
    dt = [d["recv_ns"] / 1e9 - run.t0 for d in run.decisions]
    ax[0].plot(dt, [d["bandwidth_mbps"] for d in run.decisions], ".", ms=3, label="monitor estimate")
    for t, e in run.events:
        for a in ax:
            a.axvline(t - run.t0, color="red" if e == "cut" else "green", lw=0.8, ls="--")
    ax[0].set_yscale("log")
    ax[0].set_ylabel("Mbit/s")
    ax[0].legend(loc="upper right")
    names = sorted({d["config_id"] for d in run.decisions} | {r["config_id"] for r in rows})
    ax[1].step(dt, [names.index(d["config_id"]) for d in run.decisions], where="post")
    ax[1].set_yticks(range(len(names)))
    ax[1].set_yticklabels(names, fontsize=7)
    ax[1].set_ylabel("chosen")
    t = np.array([r["t"] for r in rows])
    lat = np.array([r["total_ms"] for r in rows])
    bad = np.array([bool(r["violated"]) for r in rows])
    if len(rows):
        ax[2].plot(t[~bad], lat[~bad], ".", ms=3, label="measured")
        ax[2].plot(t[bad], lat[bad], "x", ms=4, color="red", label="SLA violated")
        pt = [(r["t"], r["predicted_ms"]) for r in rows if r["predicted_ms"] is not None]
        if pt:
            ax[2].plot(*zip(*pt), "-", lw=0.8, alpha=0.7, label="predicted (Eq. 1)")
    _plot_bound(ax[2], rows, "latency")
    ax[2].set_yscale("log")
    ax[2].set_ylabel("latency ms")
    ax[2].legend(loc="upper right", fontsize=7)
    scored = [r for r in rows if r["correct"] is not None]
    if scored:
        st = np.array([r["t"] for r in scored])
        ok = np.array([float(r["correct"]) for r in scored])
        k = min(20, len(ok))
        ax[3].plot(st[k - 1:], np.convolve(ok, np.ones(k) / k, mode="valid"), label=f"measured (last {k})")
    pa = [(r["t"], r["predicted_accuracy"]) for r in rows if r["predicted_accuracy"] is not None]
    if pa:
        ax[3].plot(*zip(*pa), "-", lw=0.8, label="profiled accuracy of the choice")
    _plot_bound(ax[3], rows, "accuracy")
    ax[3].set_ylabel(metric)
    ax[3].set_xlabel("time (s)")
    ax[3].legend(loc="lower right", fontsize=7)
    fig.suptitle(title or "adaptive offloading over an emulated link")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_bound(ax, rows: List[dict], kind: str) -> None:
    """The SLA bound while an SLA of ``kind`` was in force."""
    pts = [(r["t"], r["bound"]) for r in rows if r["sla_kind"] == kind and "bound" in r]
    if pts:
        ax.plot(*zip(*pts), "k--", lw=1, label=f"{kind} SLA")
