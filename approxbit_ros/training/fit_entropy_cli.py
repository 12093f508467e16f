"""approxbit_fit_entropy: fit the entropy model of every binary configuration of a backbone
(``approxbit_ros/codec/entropy.py``): codes of training clips, model and smoothing chosen on
validation clips, real coded sizes and coder times reported on test clips; the models are written
beside the configurations (``configs/<id>.entropy.safetensors``), where the nodes and the profiler
find them. Lossless: accuracy does not change.

    approxbit_fit_entropy --backbone models/approxbit/cnn3d-actions

A configuration set trained on recorded footage is fitted on that footage's own splits with
``--footage`` (no paths: the recordings and split options of its ``footage.json``):

    approxbit_fit_entropy --backbone models/approxbit/videomae-footage --footage
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from approxbit_ros.training.train_configs_cli import add_footage_arguments
from offload_common.cli import path_errors_in_one_line


@path_errors_in_one_line("approxbit_fit_entropy")
def main(argv=None) -> int:
    import numpy as np
    import torch

    from approxbit_ros.configurations import ConfigurationSet
    from approxbit_ros.data.synthetic_actions import SyntheticActions, clip_batches
    from approxbit_ros.training.entropy_fitting import (collect_codes, describe, fit_entropy_model, measure,
                                                        save_entropy_model)

    ap = argparse.ArgumentParser(prog="approxbit_fit_entropy", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", required=True, help="backbone folder with configs/")
    ap.add_argument("--train-clips", type=int, default=2000, help="synthetic training clips the tables are counted on")
    ap.add_argument("--val-clips", type=int, default=390, help="validation clips that choose the model")
    ap.add_argument("--test-clips", type=int, default=1300, help="test clips the sizes are reported on")
    ap.add_argument("--max-table-kib", type=int, default=256, help="largest probability table per configuration")
    ap.add_argument("--threads", type=int, default=2)
    foot = add_footage_arguments(ap, "fitting on recorded footage")
    foot.add_argument("--seed", type=int, default=0, help="seed of the footage split (as in training)")
    args = ap.parse_args(argv)
    for name in ("train_clips", "val_clips", "test_clips", "max_table_kib"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1")
    torch.set_num_threads(args.threads)
    t_start = time.time()
    configs = ConfigurationSet.from_pretrained(args.backbone, raw_features=False)
    codes = {}
    if args.footage is not None:
        from approxbit_ros.profile_cli import footage_of

        fc = footage_of(args, configs)
        for split in ("train", "val", "test"):
            n = len(fc.windows[split])
            if split == "train":         # every training window would be thousands of near-copies
                pick = np.random.default_rng(args.seed).permutation(n)[:args.train_clips]
            else:
                pick = np.arange(n)
            codes[split] = collect_codes(configs, (fc.batch(split, pick[i:i + 32])[0] for i in range(0, len(pick), 32)),
                                         progress=f"codes of {len(pick)} {split} clips", total=-(-len(pick) // 32))
        args.train_clips, args.val_clips, args.test_clips = (len(next(iter(codes[s].values()))) for s in codes)
    for split, n in (("train", args.train_clips), ("val", args.val_clips), ("test", args.test_clips)):
        if split in codes:
            continue
        codes[split] = collect_codes(configs, (f for f, _ in clip_batches(SyntheticActions(split, n), n, 32)),
                                     progress=f"codes of {n} {split} clips", total=-(-n // 32))
    print(f"{'config':22s} {'model':22s} {'table':>7s} {'packed':>6s} {'coded':>7s} {'p95':>6s} {'max':>6s} "
          f"{'ratio':>6s} {'ideal':>7s} {'packed%':>7s} {'enc us':>7s} {'dec us':>7s}", flush=True)
    command = "approxbit_fit_entropy " + " ".join(sys.argv[1:] if argv is None else argv)
    ratios = []
    for cid in sorted(codes["train"]):
        fit = fit_entropy_model(codes["train"][cid], codes["val"][cid], args.max_table_kib * 1024)
        r = measure(cid, fit.model, codes["test"][cid])
        ratios.append(r.ratio)
        local = cid.split("/", 1)[1]
        fit.model.stats = {"test_coded_mean": round(r.coded_mean, 2), "test_coded_max": r.coded_max,
                           "packed_bytes": r.packed_bytes, "test_clips": args.test_clips}
        save_entropy_model(fit.model, os.path.join(args.backbone, "configs"), local,
                           {"fitted_by": command, "train_clips": args.train_clips, "val_clips": args.val_clips})
        print(f"{cid:22s} {describe(fit.model):22s} {r.table_bytes // 1024:6d}K {r.packed_bytes:6d} {r.coded_mean:7.1f} "
              f"{r.coded_p95:6.0f} {r.coded_max:6d} {r.ratio:6.3f} {r.ideal_mean:7.1f} {100 * r.fell_back:6.1f}% "
              f"{r.encode_us:7.0f} {r.decode_us:7.0f}", flush=True)
    print(f"mean coded/packed over {len(ratios)} configurations: {sum(ratios) / len(ratios):.3f}; "
          f"{time.time() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
