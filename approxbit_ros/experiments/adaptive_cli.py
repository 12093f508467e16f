"""approxbit_adaptive_experiment: ApproxBit's Fig. 9 on our models, over a real emulated link.

The edge (camera_source, approxbit_edge, link_monitor, offload_recorder, sla_scheduler) runs in one network
namespace, the server (approxbit_server, link_echo) in another, joined by a tbf-shaped veth pair
(plus the user-space delay / loss relay with --delay-ms / --loss). approxbit_edge runs under a
CPU quota (--edge-cpu, default 0.2 of a core) so the edge is the weak device of the paper; the
monitor's ``edge_scale`` is measured (whole backbone inside vs outside the quota). The bandwidth
follows a Fig. 9 trace (levels in turn, fluctuating, repeated); the SLA is a latency bound for the
first phase and an accuracy bound for the second. The camera logs ground truth, so accuracy is
measured. Writes record.jsonl, truth.txt, summary.json and fig9.png to --out, and prints the
summary (harness: offload_common/experiments/adaptive.py). Needs root (namespaces, tc, cgroups).

With --question the task is VQA: both nodes answer that question about every clip, the monitor
chooses from the VQA lookup table (<backbone>/vqa/lut_cpu.json, written by approxbit_train_vqa)
and calibrates from the answers, and the answers are scored against the answer the camera's
ground-truth class implies (so the question must be one of the templated ones whose answer follows
from the action class: not the two "where is the object" questions).

    approxbit_adaptive_experiment --out build/experiments/fig9
    approxbit_adaptive_experiment --phases latency --sla-latency-ms 20 --out build/experiments/infeasible
    approxbit_adaptive_experiment --levels 50,3,6 --fluctuation 0 --repeats 1 --out build/experiments/steady
    approxbit_adaptive_experiment --question "which way does the object move?" --out build/experiments/fig9_vqa
"""
from __future__ import annotations

import argparse
import os
import sys

from offload_common.cli import path_errors_in_one_line
from offload_common.experiments.adaptive import add_arguments, run_adaptive_experiment


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", default="models/approxbit/cnn3d-actions")
    ap.add_argument("--lut", default="", help="lookup table (default: <backbone>/lut_cpu.json, with --question "
                    "<backbone>/vqa/lut_cpu.json)")
    ap.add_argument("--question", default="", help="VQA task: the question asked about every clip (default: VAR)")
    ap.add_argument("--camera-hz", type=float, default=32.0, help="frame rate (a clip every 16 frames)")
    add_arguments(ap, out="build/experiments/fig9", levels="50,3,6", sla_latency_ms=80.0, sla_accuracy=0.97,
                  edge_cpu=0.2)
    args = ap.parse_args(argv)
    args.truth_answer = None
    if args.question:
        try:
            args.truth_answer = expected_answers(args.question)
        except ValueError as exc:
            ap.error(str(exc))
    return args


@path_errors_in_one_line("approxbit_adaptive_experiment")
def main(argv=None) -> int:
    from offload_common.process_graph import NodeProcess, ProcessGraph, config_path

    args = parse_args(argv)
    backbone = os.path.abspath(args.backbone)
    truth = os.path.abspath(os.path.join(args.out, "truth.txt"))
    question = {"vqa_question": args.question} if args.question else {}
    lut = args.lut or os.path.join(backbone, *(("vqa",) if args.question else ()), "lut_cpu.json")

    def graphs(s):
        server = ProcessGraph([
            NodeProcess("approxbit_server", "approxbit_server", config_path("approxbit_server.yaml"),
                        overrides={"backbone_path": backbone, "torch_threads": 1, **question}),
            NodeProcess("link_echo", "link_echo", config_path("link_echo.yaml"))],
            echo=False, prefix=s.server_prefix, env=s.env)
        edge_model = ProcessGraph([
            NodeProcess("approxbit_edge", "approxbit_edge", config_path("approxbit_edge.yaml"),
                        overrides={"backbone_path": backbone, "torch_threads": 1, "config_id": "edge_only",
                                   **question})],
            echo=False, prefix=s.edge_model_prefix, env=s.env)
        edge = ProcessGraph([s.monitor, s.recorder, s.scheduler,
            NodeProcess("camera_source", "camera_source", config_path("camera_actions.yaml"), overrides={
                "rate_hz": args.camera_hz, "width": 64, "height": 64, "ground_truth_log": truth,
                "wait_for_subscribers": 1})],
            echo=False, prefix=s.edge_prefix, env=s.env)
        return server, edge_model, edge, "camera_source"

    return run_adaptive_experiment(
        args, stream_id="var", lut=lut, graphs=graphs,
        edge_speed=("approxbit_ros.experiments.edge_speed", ["--backbone", backbone, "--clips", "60"]),
        title=f"ApproxBit adaptive offloading{', VQA' if args.question else ''}",
        metric="answer accuracy" if args.question else "top-1", truth_path=truth,
        command="approxbit_adaptive_experiment " + " ".join(sys.argv[1:] if argv is None else argv),
        scored="answer" if args.question else "result", truth_answer=args.truth_answer)


def expected_answers(question: str):
    """ground-truth class -> the correct answer to ``question``; ValueError for a question that is
    not templated or whose answer needs more than the class (the place questions)."""
    from approxbit_ros.vqa.questions import answer, question_type_of

    qtype = question_type_of(question)
    if qtype.endswith("place"):
        raise ValueError(f"{question!r} asks where the object is, which the camera's ground-truth log (the "
                         f"action class) does not tell: ask a question whose answer follows from the class")
    return lambda label: answer(qtype, label)


if __name__ == "__main__":
    sys.exit(main())
