"""offload_replay RECORDING: run the recorded payloads through the server library again and
compare with the recorded results; optionally write the link the monitor saw as a rate trace.

  offload_replay recordings/run1                          # same models as the node's defaults
  offload_replay recordings/run1 --backbone-path DIR      # ApproxBit: another model version
  offload_replay recordings/run1 --detector yolo --detector-weights W.onnx   # How2Compress
  offload_replay recordings/run1 --link-trace link.csv    # for the adaptive experiments' --trace

Exit status 0 when every compared result is identical (or nothing is compared and --link-trace
only was asked), 1 when some differ, 2 on bad input.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
from typing import Optional, Sequence

from offload_common.cli import path_errors_in_one_line
from offload_common.recording.bag_reader import RecordingError, bag_paths

#: modules that register a replayer when imported (each method's ``replay`` module); named here,
#: at the command line's edge, so that no library module of offload_common imports a method
PLUGINS = ("approxbit_ros.replay", "how2compress_ros.replay")


def load_plugins(names: Sequence[str] = PLUGINS) -> None:
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            print(f"offload_replay: replayer {name} not available: {exc}", file=sys.stderr)


@path_errors_in_one_line("offload_replay")
def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="offload_replay", description=__doc__.split("\n")[0])
    ap.add_argument("recording")
    ap.add_argument("--backbone-path", default="", help="ApproxBit: backbone folder (default: the server's)")
    ap.add_argument("--detector", default="ssdlite", help="How2Compress: detector")
    ap.add_argument("--detector-weights", default="", help="How2Compress: detector weights")
    ap.add_argument("--score-threshold", type=float, default=0.5, help="How2Compress: detection score threshold")
    ap.add_argument("--clip-frames", type=int, default=16, help="ApproxBit: the server's clip_frames")
    ap.add_argument("--clip-size", type=int, default=64, help="ApproxBit: the server's clip_size")
    ap.add_argument("--torch-threads", type=int, default=2, help="CPU threads (the servers' torch_threads)")
    ap.add_argument("--link-trace", default="", help="also write the link estimate as time_s,mbps,link_up CSV")
    ap.add_argument("--json", default="", help="write the comparison as JSON here")
    args = ap.parse_args(argv)
    from offload_common.recording.replay import REPLAYERS, payload_types, replay_recording, write_link_trace

    try:
        bag_paths(args.recording)
    except RecordingError as exc:
        ap.error(str(exc))
    import torch

    torch.set_num_threads(args.torch_threads)
    load_plugins()
    out = {}
    if args.link_trace:
        try:
            rows = write_link_trace(args.recording, args.link_trace)
        except ValueError as exc:
            ap.error(str(exc))
        print(f"link trace: {rows} rows -> {args.link_trace}", file=sys.stderr)
    kinds = payload_types(args.recording)
    if not kinds and not args.link_trace:
        ap.error(f"{args.recording} holds no payloads a replayer takes ({', '.join(REPLAYERS) or 'none loaded'}); "
                 "record with record_payloads true")
    options = {k: v for k, v in vars(args).items()}
    ok = True
    for kind in kinds:
        rep = replay_recording(args.recording, REPLAYERS[kind](options))
        out[kind] = rep.as_dict()
        ok &= rep.all_identical
        print(f"{kind}: {rep.payloads} payloads, {rep.replayed_results} results replayed, {rep.recorded_results} "
              f"recorded; {rep.identical}/{rep.compared} identical, {rep.only_recorded} recorded without a replayed "
              "counterpart", file=sys.stderr)
    print(json.dumps(out, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0 if ok or not kinds else 1


if __name__ == "__main__":
    sys.exit(main())
