"""approxbit_profile: profile every ApproxBit configuration of a backbone and the baselines
(edge-only, server-only raw clip, H.264 at two QPs, DNN-Surgery float32, DeepCOD) into the
lookup table the link monitor and bench/bench_approxbit_table.py read.

    approxbit_profile --backbone models/approxbit/cnn3d-actions \\
        --out models/approxbit/cnn3d-actions/lut_cpu.json

A configuration set trained on recorded footage (``approxbit_train_configs --footage``) is
profiled on that footage's held-out test clips with ``--footage`` (no paths: the recordings and
split options the set was trained with, from its ``footage.json``); accuracy is then agreement
with the uncompressed backbone unless the footage is labelled:

    approxbit_profile --backbone models/approxbit/videomae-footage --footage \\
        --out models/approxbit/videomae-footage/lut_cpu.json
"""
from __future__ import annotations

import argparse
import sys
import time

from approxbit_ros.training.train_configs_cli import (FOOTAGE_OPTIONS, FOOTAGE_RECORD, add_footage_arguments,
                                                      load_footage)
from offload_common.cli import path_errors_in_one_line


def footage_of(args, configs):
    """The recordings ``--footage`` names, decoded and split (labels numbered by the set's classes).
    With ``--footage`` and no paths, the recordings and split options the set was trained with
    (its footage.json)."""
    import json
    import os

    if not args.footage:
        record = os.path.join(args.backbone, FOOTAGE_RECORD)
        if not os.path.isfile(record):
            raise ValueError(f"--footage without paths needs {record} (written by approxbit_train_configs --footage)")
        with open(record) as f:
            saved = json.load(f)
        args.footage = saved["footage"]
        for k in FOOTAGE_OPTIONS:
            setattr(args, k, saved[k])
    recs, fc = load_footage(args, configs.clip_frames, configs.clip_size)
    if any(r.label is not None for r in recs):
        fc.use_class_names(configs.labels)
    return fc


def footage_test_clips(args, configs) -> dict:
    """``dataset`` and ``task`` for the profiler: the footage's held-out clips."""
    from approxbit_ros.profiling import FootageTestClips

    fc = footage_of(args, configs)
    clips = FootageTestClips(fc, configs.backbone)
    what = "agreement with the uncompressed backbone" if clips.agreement else "accuracy"
    return {"dataset": clips, "task": f"action recognition ({what}, {len(clips)} held-out clips of "
                                      f"{len(fc.recordings)} recordings: {fc.summary()})"}


@path_errors_in_one_line("approxbit_profile")
def main(argv=None) -> int:
    import torch

    from approxbit_ros.configurations import ConfigurationSet, warm_up
    from approxbit_ros.profiling import profile_configurations
    from offload_common.torch_device import resolve_device

    ap = argparse.ArgumentParser(prog="approxbit_profile", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", required=True, help="backbone folder with configs/")
    ap.add_argument("--out", required=True, help="lookup table to write (JSON)")
    ap.add_argument("--clips", type=int, default=1300, help="test clips for accuracy (multiple of 13)")
    ap.add_argument("--timing-clips", type=int, default=40, help="clips timed per configuration")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (the nodes use 1)")
    ap.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:N)")
    foot = add_footage_arguments(ap, "profiling on recorded footage")
    foot.add_argument("--seed", type=int, default=0, help="seed of the footage split (as in training)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        device = resolve_device(args.device)
    except ValueError as exc:
        ap.error(str(exc))
    configs = ConfigurationSet.from_pretrained(args.backbone).to(device)
    configs.clip_frames = int(getattr(configs.backbone, "frames", configs.clip_frames))
    configs.clip_size = int(getattr(configs.backbone, "image_size", configs.clip_size))
    warm_up(configs)
    extra = {}
    if args.footage is not None:
        try:
            extra = footage_test_clips(args, configs)
        except ValueError as exc:
            ap.error(str(exc))
    t0 = time.time()
    print(f"{'config':24s} {'top-1':>6s} {'top-5':>6s} {'bytes':>8s} {'edge':>7s} {'enc':>6s} {'dec':>7s} "
          f"{'server':>7s}  (ms, median per clip)", flush=True)

    def show(e):
        print(f"{e.config_id:24s} {e.accuracy:6.3f} {e.extra['top5']:6.3f} {e.bytes:8.0f} {e.edge_ms:7.2f} "
              f"{e.encode_ms:6.2f} {e.decode_ms:7.2f} {e.server_ms:7.2f}", flush=True)

    lut = profile_configurations(configs, args.clips, args.timing_clips, on_entry=show, **extra)
    lut.meta["command"] = "approxbit_profile " + " ".join(sys.argv[1:] if argv is None else argv)
    lut.meta["seconds"] = round(time.time() - t0)
    lut.save(args.out)
    print(f"wrote {args.out} ({len(lut.entries)} entries, {lut.meta['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
