"""offload_report RECORDING: report.html (figures embedded) and summary.json of a recorded run.

  offload_report recordings/20261207-101500                  # -> recordings/20261207-101500/report/
  offload_report RUN/bag --truth RUN/truth.txt --out RUN     # with the camera's ground truth

RECORDING is offload_recorder's folder (split_* bags), one bag folder or one .mcap file. An
``experiment.json`` beside it (the adaptive experiments write one) adds the shaped rate, cut
times and time zero; ``--truth`` is camera_source's ``ground_truth_log``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Optional, Sequence

from offload_common.cli import path_errors_in_one_line
from offload_common.recording.bag_reader import RecordingError, bag_paths


@path_errors_in_one_line("offload_report")
def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="offload_report", description=__doc__.split("\n")[0])
    ap.add_argument("recording")
    ap.add_argument("--out", default="", help="output folder (default: RECORDING/report)")
    ap.add_argument("--truth", default=None, help="camera_source's ground_truth_log of the run")
    ap.add_argument("--experiment", default=None, help="experiment.json (default: the one beside RECORDING)")
    ap.add_argument("--scored", choices=("result", "answer"), default=None,
                    help="score the results (action labels, detections) or the VQA answers")
    ap.add_argument("--title", default="")
    args = ap.parse_args(argv)
    from offload_common.recording.report import EXPERIMENT_FILE, ExperimentInfo, build_report

    try:
        bag_paths(args.recording)
    except RecordingError as exc:
        ap.error(str(exc))
    if args.truth and not os.path.isfile(args.truth):
        ap.error(f"--truth {args.truth}: no such file")
    side = args.experiment or os.path.join(os.path.dirname(os.path.abspath(args.recording)), EXPERIMENT_FILE)
    info = ExperimentInfo.load(side) if os.path.exists(side) else ExperimentInfo()
    if args.scored:
        info.scored = args.scored
    if args.title:
        info.title = args.title
    out = args.out or (os.path.join(args.recording, "report") if os.path.isdir(args.recording)
                       else os.path.splitext(args.recording)[0] + "_report")
    summary = build_report(args.recording, out, args.truth, info)
    brief = {k: summary[k] for k in ("duration_s", "results", "switches", "latency_sla", "accuracy_sla", "outages")}
    print(json.dumps(brief, indent=1))
    print(f"offload_report: wrote {os.path.join(out, 'report.html')} and summary.json", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
