"""h2c_train: train the Emphasis-Assignment model by Region-aware Emphasis Routing on real
footage, with the SSDLite person detector as feedback. Resumable (--checkpoint-dir), seeded.

    h2c_train --video data/footage/vtest.avi --frames 0:400:3 --out models/how2compress/ea-d2
    h2c_train --video data/footage/vtest.avi --frames 0:400:3 --video data/footage/bikes.mp4 --frames 130:250:2 ...

--video / --frames repeat in pairs (one --frames for all videos is also accepted).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict

import numpy as np
import torch

from offload_common.cli import path_errors_in_one_line


def read_frames(path: str, start: int, stop: int, step: int):
    from offload_common.frame_sources import VideoFileSource

    return [f.rgb for f in VideoFileSource(path) if start <= f.index < stop and (f.index - start) % step == 0]


def video_ranges(videos, frames, default: str):
    """(video, start, stop, step) per ``--video``, from one ``--frames`` for all or one each
    (``default`` when none); ValueError (one line) for a count mismatch or a missing video."""
    ranges = frames or [default]
    if len(ranges) == 1:
        ranges = ranges * len(videos)
    if len(ranges) != len(videos):
        raise ValueError("give one --frames, or one per --video")
    out = []
    for video, text in zip(videos, ranges):
        if not os.path.isfile(video):
            raise ValueError(f"no such video {video} (run tools/fetch_footage.sh)")
        start, stop, step = (int(x) for x in text.split(":"))
        out.append((video, start, stop, step))
    return out


def plot_epochs(path: str, epochs, panels) -> None:
    """One panel per (title, {label: values per epoch}) in ``panels``, side by side, saved to
    ``path`` (the training curves both EA trainers write beside their model)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3), squeeze=False)
    for a, (title, curves) in zip(ax[0], panels):
        for label, values in curves.items():
            a.plot(epochs, values, "o-", label=label or None)
        if len(curves) > 1:
            a.legend()
        a.set_title(title)
        a.set_xlabel("epoch")
        a.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_history(history, path: str) -> None:
    plot_epochs(path, [h.epoch for h in history], [
        ("penalised CE (proxy alignment)", {"": [h.align_loss for h in history]}),
        ("F1 vs raw-frame detections", {"": [h.f1 for h in history]}),
        ("mean emphasis level", {"": [h.mean_level for h in history]})])


def cached_attributions(rgbs, detector, config, cache_dir: str) -> list:
    """``frame_attributions`` of the training frames, kept in ``cache_dir`` (when given) under a
    digest of the frames and the attribution settings, so that retraining with other shares or
    epochs does not recompute them (0.7 s a 768x576 frame)."""
    import hashlib

    from how2compress_ros.emphasis.sensitivity import frame_attributions

    digest = hashlib.sha1(f"{config.low_qp}:{config.steps}".encode())
    for rgb in rgbs:
        digest.update(str(rgb.shape).encode())
        digest.update(np.ascontiguousarray(rgb).data)
    path = os.path.join(cache_dir, f"sensitivity-{digest.hexdigest()[:16]}.npz") if cache_dir else ""
    if path and os.path.isfile(path):
        with np.load(path) as z:
            print(f"detector sensitivity of {len(rgbs)} frames from {path}", flush=True)
            return [z[f"a{i}"] for i in range(len(rgbs))]
    attributions = frame_attributions(detector, rgbs, config)
    if path:
        os.makedirs(cache_dir, exist_ok=True)
        np.savez_compressed(path, **{f"a{i}": a for i, a in enumerate(attributions)})
    return attributions


def pretraining_pairs(tframes, clip_lengths, detector, args) -> list:
    """(rgb, target) per frame: the pseudo-RoI, or levels from the detector's sensitivity
    (averaged over --sensitivity-radius neighbouring training frames of the same clip)."""
    if args.target == "roi":
        return [(f.rgb, f.roi) for f in tframes]
    from how2compress_ros.emphasis.sensitivity import SensitivityConfig, sensitivity_levels

    config = SensitivityConfig(low_qp=args.sensitivity_qp)
    if args.sensitivity_shares:
        config.shares = tuple(float(x) for x in args.sensitivity_shares.split(","))
    rgbs = [f.rgb for f in tframes]
    attributions = cached_attributions(rgbs, detector, config, args.checkpoint_dir)
    ends = np.cumsum(clip_lengths)
    levels = [lv for lo, hi in zip(ends - clip_lengths, ends)
              for lv in sensitivity_levels(attributions[lo:hi], config, args.sensitivity_radius)]
    return list(zip(rgbs, levels))


def pretrain(model, tframes, clip_lengths, detector, args) -> list:
    """Pretraining on pseudo-RoI or detector-sensitivity targets (resumable: its weights are
    kept in the checkpoint folder, and a started RER run resumes from its own state instead)."""
    from safetensors.torch import load_file, save_file

    from how2compress_ros.emphasis.pretraining import PretrainConfig, EmphasisPretrainer

    if args.pretrain_epochs <= 0:
        return []
    ckpt = args.checkpoint_dir
    if ckpt and os.path.isfile(os.path.join(ckpt, "trainer_state.pt")):
        return []     # RER already started: its checkpoint holds the model
    saved = os.path.join(ckpt, "pretrained.safetensors") if ckpt else ""
    saved_history = os.path.join(ckpt, "pretrained_history.json") if ckpt else ""
    if saved and os.path.isfile(saved):
        model.load_state_dict(load_file(saved))
        print(f"pretrained weights from {saved}", flush=True)
        with open(saved_history) as f:
            return json.load(f)
    history = EmphasisPretrainer(model, pretraining_pairs(tframes, clip_lengths, detector, args),
                            PretrainConfig(epochs=args.pretrain_epochs, seed=args.seed)).train(
        log=lambda s: print(f"pretrain epoch {s['epoch']}: {s}", flush=True))
    if saved:
        os.makedirs(ckpt, exist_ok=True)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, saved)
        with open(saved_history, "w") as f:
            json.dump(history, f)
    return history


@path_errors_in_one_line("h2c_train")
def main(argv=None) -> int:
    from how2compress_ros.detectors.ssdlite_person import SSDLitePersonDetector
    from how2compress_ros.emphasis.model import EmphasisModel, EmphasisModelConfig
    from how2compress_ros.emphasis.training import RERConfig, RERTrainer, prepare_frames

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--video", action="append", required=True, help="training footage (any PyAV-readable file)")
    ap.add_argument("--frames", action="append", help="start:stop:step of frame indices to train on (default 0:400:3)")
    ap.add_argument("--level-qps", default="", help="level table to train with (default 45,43,37,34,30)")
    ap.add_argument("--out", required=True, help="output folder (config.json + model.safetensors)")
    ap.add_argument("--checkpoint-dir", default="", help="resume from / save per-epoch state here")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--downsample", type=int, default=2, help="EA input downsampling D in [1, 4]")
    ap.add_argument("--width-multiplier", type=float, default=0.5)
    ap.add_argument("--backbone", default="", help="local HF MobileViTV2 snapshot folder to start from")
    ap.add_argument("--init", choices=["kaiming", "hf"], default="kaiming",
                    help="random init of the backbone (models before commit 'EA model: He init' used hf)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--roi-score", type=float, default=0.3, help="pseudo-RoI detection score threshold")
    ap.add_argument("--roi-dilate", type=int, default=1, help="grow the pseudo-RoI by this many macroblocks")
    ap.add_argument("--plain-ce", action="store_true", help="paper's plain CE instead of RoI/BG-balanced CE")
    ap.add_argument("--lr", type=float, default=1e-3, help="RER peak learning rate (cosine to 1e-6)")
    ap.add_argument("--pretrain-epochs", type=int, default=0,
                    help="pretraining epochs before RER (emphasis/pretraining.py, target --target; 0 = "
                         "none, the paper's recipe from a random or --backbone init); --epochs 0 keeps the "
                         "pretrained model without RER")
    ap.add_argument("--target", choices=["roi", "sensitivity"], default="roi",
                    help="pretraining target: the pseudo-RoI at the top level, or levels from the detector's "
                         "sensitivity to each macroblock's quality (emphasis/sensitivity.py)")
    ap.add_argument("--sensitivity-qp", type=int, default=40,
                    help="QP of the low-quality frame the sensitivity is measured against")
    ap.add_argument("--sensitivity-shares", default="",
                    help="cumulative sensitivity shares of the levels from the top one down (default "
                         "0.5,0.7,0.85,0.95 for levels 4..1; '0.9' = level 1 on the fewest macroblocks holding "
                         "90 %%, level 0 elsewhere: evaluate it with a table like 38,32,32,32,32)")
    ap.add_argument("--sensitivity-radius", type=int, default=0,
                    help="average each frame's sensitivity shares over the training frames within this many "
                         "of it in the same clip (sampled frames, after --frames' step) before taking levels")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    try:
        ranges = video_ranges(args.video, args.frames, "0:400:3")
    except ValueError as exc:
        print(f"h2c_train: {exc}", file=sys.stderr)
        return 2
    frames, clip_lengths = [], []
    for video, start, stop, step in ranges:
        part = read_frames(video, start, stop, step)
        print(f"training on {len(part)} frames of {video} [{start}:{stop}:{step}]", flush=True)
        frames += part
        clip_lengths.append(len(part))
    extra = {}
    if args.level_qps:
        from how2compress_ros.pipeline import parse_level_table

        extra["level_qps"] = parse_level_table(args.level_qps)
    cfg = RERConfig(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, lr=args.lr,
                    roi_score=args.roi_score, roi_dilate=args.roi_dilate, balanced_ce=not args.plain_ce,
                    freeze_batchnorm=args.pretrain_epochs > 0 or bool(args.backbone), **extra)
    detector = SSDLitePersonDetector(score_threshold=min(cfg.roi_score, cfg.accuracy_score))
    t0 = time.time()
    tframes = prepare_frames(frames, detector, cfg.level_qps, roi_score=cfg.roi_score, roi_dilate=cfg.roi_dilate,
                             accuracy_score=cfg.accuracy_score)
    torch.manual_seed(args.seed)
    model = EmphasisModel(EmphasisModelConfig(downsample=args.downsample, width_multiplier=args.width_multiplier,
                                              backbone_path=args.backbone, init=args.init))
    pretrain_history = pretrain(model, tframes, clip_lengths, detector, args)
    trainer = RERTrainer(model, detector, tframes, cfg)
    print(f"proxy emphasis thresholds: tau_roi={trainer.tau_roi:.4f} tau_bg={trainer.tau_bg:.4f}", flush=True)
    history = trainer.train(checkpoint_dir=args.checkpoint_dir or None,
                            on_epoch=lambda s: print(f"epoch {s.epoch}: {asdict(s)}", flush=True))
    model.save_pretrained(args.out, extra={
        "trained_by": "h2c_train " + " ".join(sys.argv[1:] if argv is None else argv),
        "training_frames": len(frames), "seed": args.seed, "rer": {k: list(v) if isinstance(v, tuple) else v
                                                                    for k, v in asdict(cfg).items()},
        "pretrain_history": pretrain_history, "history": [asdict(h) for h in history],
        "train_seconds": round(time.time() - t0, 1)})
    plot_history(history, os.path.join(args.out, "training.png"))
    print(f"saved {args.out} ({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
