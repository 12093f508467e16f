"""Scoring an adaptive run from recorder lines: ground truth by majority clip, SLA violations
against the SLA in force, switch counts, prediction error per rate level, link-cut timings;
the recorder's SLA schedule parser; the estimator drops fast and rises slowly."""
import json

import pytest

from offload_common.experiments.analysis import load_run, summarize
from offload_common.monitor.chooser import parse_sla_schedule
from offload_common.monitor.link_estimator import Ewma

S = 1_000_000_000


def write_run(tmp_path):
    lines, truth = [], []
    labels = ["a", "b", "c", "d", "e", "f"]
    for k in range(6 * 16):
        truth.append(f"{(100 + k) * S} {k} {labels[k // 16]}")
    # decisions: latency SLA 50 ms, config X predicted 40 ms; at t=130 a switch to Y under an accuracy SLA
    dec = lambda t, cid, kind, pred, acc, up=True: {"type": "decision", "recv_ns": t * S, "stamp_ns": t * S,
        "decision_seq": 0, "config_id": cid, "method": "approxbit", "reason": "", "link_up": up,
        "bandwidth_mbps": 3.0, "link_delay_ms": 0.0, "predicted_latency_ms": pred, "predicted_accuracy": acc,
        "sla_kind": kind, "sla_latency_ms": 50.0, "sla_accuracy": 0.95, "sla_feasible": True}
    lines += [dec(99, "X", "latency", 40.0, 0.97), dec(170, "Y", "accuracy", 60.0, 0.96),
              dec(181, "edge_only", "accuracy", 90.0, 0.99, up=False), dec(185, "Y", "accuracy", 60.0, 0.96)]
    res = lambda k, cid, label, total: {"type": "result", "recv_ns": (100 + k) * S + 1, "stamp_ns": (100 + k) * S,
        "seq": k, "config_id": cid, "edge_only": False, "label": label, "score": 0.9, "total_ms": total,
        "edge_ms": 1, "transmit_ms": 1, "server_ms": 1, "queue_ms": 0, "payload_bytes": 10}
    lines += [res(15, "X", "a", 45.0), res(31, "X", "b", 55.0),      # aligned; second violates 50 ms
              res(35, "X", "b", 41.0),                              # newest frame 3 of clip 2: majority clip 1 ('b')
              res(79, "Y", "e", 70.0), res(95, "Y", "x", 65.0)]     # accuracy SLA: 0.96 > 0.95 -> no violation
    rec, tr = tmp_path / "record.jsonl", tmp_path / "truth.txt"
    rec.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    tr.write_text("\n".join(truth) + "\n")
    return str(rec), str(tr)


def test_summary_scores_truth_violations_switches_and_cuts(tmp_path):
    rec, tr = write_run(tmp_path)
    rates = [(90.0, 3.0), (200.0, 3.0)]
    run = load_run(rec, tr, rates, events=[(180.0, "cut"), (183.0, "restore")], t0=100.0)
    s = summarize(run, levels=(3.0, 50.0))
    assert s["results"] == 5 and s["duplicate_results"] == 0 and s["scored_results"] == 5
    assert s["clip_aligned_fraction"] == pytest.approx(4 / 5)
    lat, acc = s["latency_sla"], s["accuracy_sla"]
    assert (lat["results"], lat["violations"]) == (3, 1) and lat["measured_accuracy"] == 1.0
    assert (acc["results"], acc["violations"]) == (2, 0) and acc["measured_accuracy"] == 0.5
    assert s["switches"] == 3
    cut = s["link_cut"][0]
    assert cut["fallback_s"] == pytest.approx(1.0) and cut["offloading_again_s"] == pytest.approx(2.0)


def test_prediction_error_groups_by_level_and_config(tmp_path):
    rec, tr = write_run(tmp_path)
    lines = open(rec).read().splitlines()
    extra = [json.loads(lines[4]) | {"stamp_ns": (120 + i) * S, "recv_ns": (120 + i) * S + 1, "total_ms": 44.0}
             for i in range(6)]
    with open(rec, "a") as f:
        f.write("\n".join(json.dumps(x) for x in extra) + "\n")
    s = summarize(load_run(rec, tr, [(90.0, 3.0)], t0=100.0), levels=(3.0, 50.0))
    row = next(p for p in s["prediction"] if p["config_id"] == "X")
    assert row["rate_mbps"] == 3.0 and row["predicted_p50_ms"] == 40.0 and row["error"] == pytest.approx(0.1)


def test_duplicates_are_counted(tmp_path):
    rec, tr = write_run(tmp_path)
    first = open(rec).read().splitlines()[4]
    with open(rec, "a") as f:
        f.write(first + "\n")
    assert summarize(load_run(rec, tr))["duplicate_results"] == 1


def test_sla_schedule_parsing():
    assert parse_sla_schedule("60:accuracy:0.95, 0:latency:200") == [(0.0, "latency", 200.0), (60.0, "accuracy", 0.95)]
    assert parse_sla_schedule("") == []
    for bad in ("10:latency", "x:latency:1", "5:speed:3"):
        with pytest.raises(ValueError):
            parse_sla_schedule(bad)


def test_capacity_average_drops_fast_and_rises_slowly():
    e = Ewma(0.3, alpha_down=0.7)
    e.add(50.0)
    assert e.add(3.0) == pytest.approx(50 - 0.7 * 47)
    v = e.value
    assert e.add(50.0) == pytest.approx(v + 0.3 * (50 - v))


def test_answers_are_scored_against_the_answer_the_true_class_implies(tmp_path):
    rec, tr = write_run(tmp_path)
    lines = [json.loads(x) for x in open(rec).read().splitlines()]
    # the same clips answered (truth a, b, b, e, f): right, wrong, right, right, wrong
    answers = [r | {"type": "answer", "label": lbl, "question": "q"} for r, lbl in
               zip((r for r in lines if r["type"] == "result"), ("A", "A", "B", "E", "E"))]
    with open(rec, "a") as f:
        f.write("\n".join(json.dumps(x) for x in answers) + "\n")
    run = load_run(rec, tr, t0=100.0, scored="answer", truth_answer=str.upper)
    s = summarize(run, levels=(3.0, 50.0))
    assert s["results"] == 5 and s["scored_results"] == 5
    assert s["latency_sla"]["measured_accuracy"] == round(2 / 3, 4)        # A ok, A for 'b' wrong, B ok
    assert s["accuracy_sla"]["measured_accuracy"] == 0.5                      # E ok, E for 'f' wrong
    # the action results of the same run still score as before
    assert summarize(load_run(rec, tr, t0=100.0), levels=(3.0, 50.0))["latency_sla"]["measured_accuracy"] == 1.0
    with pytest.raises(ValueError, match="scored"):
        load_run(rec, tr, scored="answers")
