"""approxbit_train_configs: train the eight ApproxBit configurations of a trained backbone —
offload points at ~1/3 and ~2/3 of its FLOPs (printed), spatial encoder off / on, and two
codebook sizes from the channel width at the offload point (D/2 and D/4, as the paper sizes K
from the channels) — and write them next to the backbone (configs/*.safetensors + .json).
With ``--deepcod`` it trains the DeepCOD-style float baselines instead: the same encoder (spatial
encoder on) and decoder, codes left float32, sized to 1/32 and 1/128 of the float32 feature map.

    approxbit_train_configs --backbone models/approxbit/cnn3d-actions
    approxbit_train_configs --backbone models/approxbit/cnn3d-actions --deepcod
    approxbit_train_configs --backbone models/approxbit/videomae-actions --position-mean \
        --spatial-mixing dense --lambda-binary 0.1 --lr-schedule cosine --epochs 12

With ``--footage`` it trains on the user's own recordings instead of the synthetic clips (videos
and / or ROS 2 bags; labels optional): with no labels the frozen backbone's own logits are the
target (KL at ``--distill-temperature``), with labels cross-entropy is added. Clips are split into
train / validation / test by time segment (or by file), the epoch kept is the best on
validation, and the test split reports agreement with the uncompressed backbone. The result is a
complete configuration set (the backbone snapshot copied beside ``configs/``) in ``--set-folder``:

    approxbit_train_configs --backbone models/approxbit/videomae-actions --footage data/footage \
        --set-folder models/approxbit/videomae-footage --position-mean --spatial-mixing dense \
        --lambda-binary 0.1 --lr-schedule cosine
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from offload_common.cli import path_errors_in_one_line


DEEPCOD_RATIOS = (32, 128)


def deepcod_codebook_size(channels: int, ratio: int) -> int:
    """K float32 codes per position after the spatial encoder (8x fewer positions) so that the
    payload is 1/ratio of the float32 feature map."""
    k = channels * 8 // ratio
    if k < 1 or channels * 8 % ratio:
        raise ValueError(f"no integer K gives 1/{ratio} of a {channels}-channel map")
    return k


def add_footage_arguments(ap, title: str):
    """``--footage`` and the options that decode and split it (shared with approxbit_profile)."""
    foot = ap.add_argument_group(title)
    foot.add_argument("--footage", nargs="*", default=None, help="videos, folders of videos, ROS 2 bags")
    foot.add_argument("--labels", default="none", help="none, folders (sub-folder names) or a CSV of path,label")
    foot.add_argument("--bag-topic", default="", help="image topic in the bags (default: their only one)")
    foot.add_argument("--frame-stride", type=int, default=1, help="take every n-th frame (sampling rate)")
    foot.add_argument("--segment-s", type=float, default=4.0, help="time segments never split across splits")
    foot.add_argument("--split-by", choices=("segment", "file"), default="segment")
    foot.add_argument("--eval-step", type=int, default=2, help="a validation / test clip starts every n frames")
    foot.add_argument("--cache-dir", default="build/footage_cache", help="decoded clips, reused across runs")
    return foot


def plan(backbone, frames: int = 16, size: int = 64):
    """FLOPs per offload point, the two points, and the eight (o, encoder, K) configurations."""
    from approxbit_ros.backbones import blank_input
    from approxbit_ros.backbones.flops import cumulative_block_flops, offload_points

    cum = cumulative_block_flops(backbone, blank_input(backbone, frames, size))
    points = offload_points(cum)
    return cum, points, [(o, enc, k) for o in points for enc in (False, True)
                         for k in (max(1, backbone.feature_channels(o) // 2), max(1, backbone.feature_channels(o) // 4))]


@path_errors_in_one_line("approxbit_train_configs")
def main(argv=None) -> int:
    import torch

    from approxbit_ros.codec.binary_codec import SPATIAL_MIXING
    from approxbit_ros.configurations import load_backbone
    from approxbit_ros.training.codec_training import (ApproxBitConfiguration, CodecTrainingConfig,
                                                       evaluate_configuration, save_configuration,
                                                       train_configuration)

    ap = argparse.ArgumentParser(prog="approxbit_train_configs", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", required=True, help="trained backbone folder")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--clips-per-epoch", type=int, default=960)
    ap.add_argument("--only", default="", help="comma-separated config ids to train (default: all eight)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--deepcod", action="store_true", help="train the DeepCOD-style float baselines instead")
    ap.add_argument("--spatial-mixing", choices=SPATIAL_MIXING, default="depthwise",
                    help="spatial encoder: depthwise (default) or dense Conv3d k2 s2")
    ap.add_argument("--lr-schedule", choices=("constant", "cosine"), default="constant")
    ap.add_argument("--lambda-recon", type=float, default=1.0, help="lambda1 of Eq. 3 (paper: 1)")
    ap.add_argument("--lambda-binary", type=float, default=1.0,
                    help="lambda2 of Eq. 3 (paper: 1; at 1 a ViT's codes saturate into constant bits, use 0.1)")
    ap.add_argument("--position-mean", action="store_true",
                    help="code features minus their per-position mean (ViT backbones: see BinaryCodecConfig)")
    ap.add_argument("--out", default="", help="output folder (default: <backbone>/configs)")
    foot = add_footage_arguments(ap, "training on your own recordings")
    foot.add_argument("--distill-temperature", type=float, default=2.0,
                      help="KL to the backbone's own logits at this temperature (footage; 0: labels only)")
    foot.add_argument("--set-folder", default="", help="write a complete configuration set here (footage)")
    ap.add_argument("--checkpoint-dir", default="",
                    help="resumable training states (default: build/approxbit_ckpt/<backbone folder name>)")
    args = ap.parse_args(argv)
    if args.footage is not None and not args.footage:
        ap.error("--footage needs at least one video, folder or bag")
    if args.footage and not args.set_folder:
        ap.error("--footage needs --set-folder (the configuration set it writes)")
    torch.set_num_threads(args.threads)
    backbone, _, class_names = load_backbone(args.backbone)
    frames = int(getattr(backbone, "frames", 16))
    size = int(getattr(backbone, "image_size", 64))
    data = None
    if args.footage:
        try:
            data = footage_data(args, backbone, class_names, frames, size)
        except ValueError as exc:       # no recordings, a bad option, an unreadable recording
            ap.error(str(exc))
    cum, points, configs = plan(backbone, frames, size)
    total = cum[-1]
    print("edge FLOPs by offload point: " + ", ".join(f"o{o}={c / 1e6:.1f}M ({c / total:.0%})"
                                                       for o, c in enumerate(cum[:-1])), flush=True)
    print(f"offload points (~1/3, ~2/3 of {total / 1e6:.1f} MFLOPs): {points}", flush=True)
    if args.set_folder:
        copy_backbone(args.backbone, args.set_folder)
        if args.footage:
            write_footage_record(args, os.path.join(args.set_folder, FOOTAGE_RECORD))
    out = args.out or os.path.join(args.set_folder or args.backbone, "configs")
    ckpt_dir = args.checkpoint_dir or os.path.join("build", "approxbit_ckpt", os.path.basename(
        os.path.normpath(args.set_folder or args.backbone)))        # footage runs: never the synthetic states
    shared = dict(epochs=args.epochs, clips_per_epoch=args.clips_per_epoch, seed=args.seed,
                  spatial_mixing=args.spatial_mixing, lr_schedule=args.lr_schedule,
                  position_mean=args.position_mean, lambda_recon=args.lambda_recon,
                  lambda_binary=args.lambda_binary,
                  distill_temperature=args.distill_temperature if args.footage else 0.0,
                  keep_best=bool(args.footage))
    if args.deepcod:
        jobs = [CodecTrainingConfig(offload_point=o, codebook_size=deepcod_codebook_size(
                    backbone.feature_channels(o), r), spatial_encoder=True, float_codes=True, compression_ratio=r,
                    **shared)
                for o in points for r in DEEPCOD_RATIOS]
    else:
        jobs = [CodecTrainingConfig(offload_point=o, codebook_size=k, spatial_encoder=enc, **shared)
                for o, enc, k in configs]
    for cfg in jobs:
        if args.only and cfg.config_id not in args.only.split(","):
            continue
        torch.manual_seed(args.seed)
        model = ApproxBitConfiguration.from_training_config(backbone, cfg)
        t0 = time.time()
        checkpoint = os.path.join(ckpt_dir, cfg.config_id.replace("/", "_") + ".pt")
        hist = train_configuration(model, cfg, checkpoint=checkpoint, data=data)
        test = evaluate_configuration(model, "test", 1300, data=data)
        path = save_configuration(model, cfg, out, extra={
            "trained_by": "approxbit_train_configs " + " ".join(sys.argv[1:] if argv is None else argv),
            "history": hist, "test": test, "train_seconds": round(time.time() - t0),
            **({"footage": data.describe()} if data is not None else {})})
        print(f"{cfg.config_id}: test {describe_scores(test)} ({time.time() - t0:.0f} s) -> {path}", flush=True)
    return 0


FOOTAGE_RECORD = "footage.json"       # what the set was trained on: approxbit_profile --footage reads it
FOOTAGE_OPTIONS = ("labels", "bag_topic", "frame_stride", "segment_s", "split_by", "eval_step", "seed")


def write_footage_record(args, path: str) -> None:
    import json

    with open(path, "w") as f:
        json.dump({"footage": list(args.footage), **{k: getattr(args, k) for k in FOOTAGE_OPTIONS}}, f, indent=1)


def describe_scores(s: dict) -> str:
    if "agree_top1" not in s:
        return f"top-1 {s['top1']:.3f} top-5 {s['top5']:.3f}"
    text = (f"agreement with the backbone top-1 {s['agree_top1']:.3f} top-5 {s['agree_top5']:.3f}, on "
            f"{s['minority_clips']} non-majority clips {s['agree_top1_minority']:.3f}, KL {s['kl_to_backbone']:.4f}, "
            f"{s['clips']} clips")
    return text + (f"; accuracy top-1 {s['top1']:.3f}" if "top1" in s else "")


def load_footage(args, frames: int, size: int):
    """The recordings ``args`` name (``--footage`` and the split options), decoded and split."""
    from approxbit_ros.data.footage import FootageClips, FootageConfig, find_recordings

    config = FootageConfig(frames=frames, size=size, frame_stride=args.frame_stride, segment_s=args.segment_s,
                           split_by=args.split_by, seed=args.seed, eval_step=args.eval_step, bag_topic=args.bag_topic)
    recs = find_recordings(args.footage, args.labels)
    fc = FootageClips.load(recs, config, cache_dir=args.cache_dir)
    print(f"footage: {fc.summary()}", flush=True)
    return recs, fc


def footage_data(args, backbone, labels, frames: int, size: int):
    """The recordings as training data, with the backbone's prediction histogram printed."""
    from approxbit_ros.training.clip_data import FootageClipData, prediction_histogram

    recs, fc = load_footage(args, frames, size)
    if any(r.label is not None for r in recs):
        fc.use_class_names(labels)
    data = FootageClipData(fc, backbone, args.clips_per_epoch, args.seed)
    for split in ("train", "val", "test"):
        hist, ent = prediction_histogram(data.teacher[split], labels)
        top = ", ".join(f"{k} {v:.0%}" for k, v in sorted(hist.items(), key=lambda kv: -kv[1])[:6])
        print(f"backbone on {split} clips: {len(hist)} classes, entropy {ent:.2f} bits; {top}", flush=True)
    data.describe = lambda: {"recordings": [r.path for r in recs], "summary": fc.summary(),
                             "majority_class": labels[data.majority], "segment_s": args.segment_s,
                             "split_by": args.split_by, "frame_stride": args.frame_stride}
    return data


def copy_backbone(src: str, dst: str) -> None:
    """The backbone snapshot's files (not its configurations) into ``dst``."""
    import shutil

    os.makedirs(dst, exist_ok=True)
    for name in ("config.json", "model.safetensors", "preprocessor_config.json", "training.json"):
        if os.path.isfile(os.path.join(src, name)):
            shutil.copy2(os.path.join(src, name), os.path.join(dst, name))


if __name__ == "__main__":
    sys.exit(main())
