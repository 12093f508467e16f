"""h2c_train_sensitivity: train an EA model on the detector's own pretrained trunk toward the
detector's sensitivity (``emphasis/sensitivity_training.py``). Seeded, resumable
(--checkpoint-dir), progress bars; the epoch is chosen on the last --val-fraction of each
video's frames (a contiguous time segment the model never trains on).

    h2c_train_sensitivity --video data/footage/vtest.avi --frames 0:400:1 \\
        --video data/footage/bikes.mp4 --frames 130:250:1 \\
        --video data/footage/Megamind.avi --frames 0:270:1 \\
        --out models/how2compress/ea-ssdlite-sensitivity --checkpoint-dir artifacts/h2c-sens
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import asdict

import torch

from offload_common.cli import path_errors_in_one_line


def plot_history(history, path: str) -> None:
    from how2compress_ros.emphasis.train_cli import plot_epochs

    plot_epochs(path, [h["epoch"] for h in history], [
        ("KL(sensitivity share || model)", {"train": [h["train_kl"] for h in history],
                                            "validation": [h["val_kl"] for h in history]}),
        ("validation: sensitivity in the oracle-sized top set", {"": [h["val_captured_90"] for h in history]})])


@path_errors_in_one_line("h2c_train_sensitivity")
def main(argv=None) -> int:
    from how2compress_ros.detectors.ssdlite_person import SSDLitePersonDetector
    from how2compress_ros.emphasis.model import EmphasisModel, EmphasisModelConfig, parse_shares
    from how2compress_ros.emphasis.sensitivity import SensitivityConfig
    from how2compress_ros.emphasis.sensitivity_training import (ImportanceTrainConfig, ImportanceTrainer,
                                                                share_targets)
    from how2compress_ros.emphasis.train_cli import cached_attributions, read_frames, video_ranges

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--video", action="append", required=True, help="training footage (any PyAV-readable file)")
    ap.add_argument("--frames", action="append", help="start:stop:step per --video (default 0:400:1)")
    ap.add_argument("--out", required=True, help="output model folder (config.json + model.safetensors)")
    ap.add_argument("--checkpoint-dir", default="", help="resume from / save per-epoch state here")
    ap.add_argument("--sensitivity-cache", default="",
                    help="keep the frames' detector sensitivity here (0.7 s a 768x576 frame to compute; default "
                         "CHECKPOINT_DIR/sensitivity)")
    ap.add_argument("--val-fraction", type=float, default=0.2,
                    help="last fraction of each video's frames kept for choosing the epoch")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--downsample", type=int, default=2, help="EA input downsampling D in [1, 4]")
    ap.add_argument("--head-channels", type=int, default=64)
    ap.add_argument("--trunk-trainable", action="store_true", help="fine-tune the detector's trunk as well")
    ap.add_argument("--radius", type=int, default=0,
                    help="average each frame's sensitivity shares over this many frames either side")
    ap.add_argument("--shares", default="0.5,0.7,0.85,0.95",
                    help="cumulative sensitivity shares of levels 4..1 of the target maps")
    ap.add_argument("--no-calibrate", action="store_true",
                    help="keep --shares for the model's maps instead of calibrating them on the validation frames "
                         "to emphasise as many macroblocks as the sensitivity maps at --shares do")
    ap.add_argument("--uniform-above", default="auto",
                    help="'do no harm': code a frame uniformly at the top level when at least this fraction of "
                         "its macroblocks is emphasised (1 = off; stored in the model); auto: just above the "
                         "largest fraction the calibrated maps emphasise on the validation frames")
    ap.add_argument("--sensitivity-qp", type=int, default=40, help="QP of the low-quality version")
    ap.add_argument("--graph", default="", help="detector frozen graph (default: the installed detector's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)

    try:
        shares = parse_shares(args.shares)
        auto_limit = args.uniform_above == "auto"
        try:
            uniform_above = 1.0 if auto_limit else float(args.uniform_above)
        except ValueError:
            raise ValueError(f"--uniform-above must be a fraction in (0, 1] or auto, not {args.uniform_above!r}")
        config = EmphasisModelConfig(levels=len(shares) + 1, downsample=args.downsample, backbone="ssdlite-mobilenetv2",
                                     output="importance", shares=shares, head_channels=args.head_channels,
                                     trunk_trainable=args.trunk_trainable, uniform_above=uniform_above)
        config.validate()
        if not 0 <= args.val_fraction < 1 or args.epochs < 1 or args.radius < 0:
            raise ValueError("--val-fraction must be in [0, 1), --epochs >= 1, --radius >= 0")
        ranges = video_ranges(args.video, args.frames, "0:400:1")
    except ValueError as exc:
        print(f"h2c_train_sensitivity: {exc}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    t0 = time.time()
    detector = SSDLitePersonDetector(graph_path=args.graph or None)
    sens = SensitivityConfig(low_qp=args.sensitivity_qp)
    train = ([], [])
    val = ([], [])
    cache = args.sensitivity_cache or (os.path.join(args.checkpoint_dir, "sensitivity") if args.checkpoint_dir else "")
    for video, start, stop, step in ranges:
        rgbs = read_frames(video, start, stop, step)
        attributions = cached_attributions(rgbs, detector, sens, cache)
        targets = share_targets(attributions, args.radius, sens.min_total)
        cut = len(rgbs) - int(round(args.val_fraction * len(rgbs)))
        print(f"{video} [{start}:{stop}:{step}]: {cut} training frames, {len(rgbs) - cut} validation frames", flush=True)
        train[0].extend(rgbs[:cut])
        train[1].extend(targets[:cut])
        val[0].extend(rgbs[cut:])
        val[1].extend(targets[cut:])
    model = EmphasisModel.from_detector_graph(config, args.graph or None)
    tcfg = ImportanceTrainConfig(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, seed=args.seed)
    trainer = ImportanceTrainer(model, train[0], train[1], val[0], val[1], tcfg)
    history = trainer.train(checkpoint_dir=args.checkpoint_dir or None,
                            log=lambda s: print(" ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                                                         for k, v in s.items()), flush=True))
    calibration = {}
    maps, val_targets = trainer.validation_maps() if val[0] else ([], [])   # the trained model's, once
    if not args.no_calibrate and val[0]:
        from how2compress_ros.emphasis.sensitivity_training import calibrate_shares

        model.config.shares, fractions = calibrate_shares(maps, val_targets, shares)
        calibration = {"target_shares": list(shares), "target_fractions": fractions,
                       "shares": list(model.config.shares)}
        print("shares calibrated on the validation frames: " + ", ".join(
            f"{a:.2f} -> {b:.3f} ({f:.1%} of macroblocks)" for a, b, f in zip(shares, model.config.shares, fractions)),
            flush=True)
    if auto_limit and val[0]:
        from how2compress_ros.emphasis.sensitivity_training import emphasis_limit, emphasised_fraction

        emphasised = [emphasised_fraction(p, model.config.shares[-1]) for p in maps]
        model.config.uniform_above = emphasis_limit(emphasised)
        calibration["validation_max_emphasised"] = round(max(emphasised), 4)
        print(f"do no harm: maps emphasise at most {max(emphasised):.1%} of the macroblocks on the validation frames; "
              f"frames at or above {model.config.uniform_above:.2f} are coded uniformly", flush=True)
    calibration["uniform_above"] = model.config.uniform_above
    model.save_pretrained(args.out, extra={
        "calibration": calibration,
        "trained_by": "h2c_train_sensitivity " + " ".join(sys.argv[1:] if argv is None else argv),
        "training_frames": len(train[0]), "validation_frames": len(val[0]), "seed": args.seed,
        "best_epoch": trainer.best_epoch, "train": asdict(tcfg), "radius": args.radius,
        "sensitivity": asdict(sens), "history": history, "train_seconds": round(time.time() - t0, 1)})
    plot_history(history, os.path.join(args.out, "training.png"))
    best = history[trainer.best_epoch - 1]
    print(f"saved {args.out}: epoch {trainer.best_epoch} of {len(history)} (validation KL {best['val_kl']:.4f}, "
          f"captured {best['val_captured_90']:.3f}) in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
