#!/usr/bin/env python3
"""Probe one ApproxBit codec recipe on recorded footage (issue 28): train one configuration
label-free around a frozen backbone on the footage's train segments and print, per epoch, the
training loss terms and the validation agreement with the uncompressed backbone; at the end the
train-split (no augmentation) and test-split scores. What docs/experiments/approxbit_footage_probes.txt
reports was printed by this, e.g.

    tools/ros_env.sh python bench/probe_footage_codec.py --config o4/noenc/k24 --epochs 12
    tools/ros_env.sh python bench/probe_footage_codec.py --config o4/deepcod/r32 --epochs 8 --threads 2
"""
from __future__ import annotations

import argparse
import time

import torch

from approxbit_ros.configurations import load_backbone
from approxbit_ros.data.footage import FootageClips, FootageConfig, find_recordings
from approxbit_ros.training.clip_data import FootageClipData
from approxbit_ros.training.codec_training import (ApproxBitConfiguration, CodecTrainingConfig,
                                                   evaluate_configuration, train_configuration)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", default="models/approxbit/videomae-actions")
    ap.add_argument("--footage", nargs="+", default=["data/footage"])
    ap.add_argument("--config", default="o2/noenc/k48", help="o<o>/<enc|noenc>/k<K> or o<o>/deepcod/r<R>")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--temperature", type=float, default=2.0)
    ap.add_argument("--lambda-recon", type=float, default=1.0)
    ap.add_argument("--no-augment", action="store_true")
    ap.add_argument("--synthetic-share", type=float, default=0.0, help="share of generic synthetic clips mixed in")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    parts = args.config.split("/")
    o, kind, size = int(parts[0][1:]), parts[1], int(parts[2][1:])
    backbone = load_backbone(args.backbone)[0]
    if kind == "deepcod":
        from approxbit_ros.training.train_configs_cli import deepcod_codebook_size

        extra = dict(codebook_size=deepcod_codebook_size(backbone.feature_channels(o), size), spatial_encoder=True,
                     float_codes=True, compression_ratio=size)
    else:
        extra = dict(codebook_size=size, spatial_encoder=kind == "enc")
    cfg = CodecTrainingConfig(offload_point=o, epochs=args.epochs, clips_per_epoch=960, spatial_mixing="dense",
                              lambda_binary=0.1, lr_schedule="cosine", position_mean=True, keep_best=True,
                              distill_temperature=args.temperature, lambda_recon=args.lambda_recon, **extra)
    fc = FootageClips.load(find_recordings(args.footage), FootageConfig(eval_step=2), cache_dir="build/footage_cache",
                           progress=False)
    print(f"footage: {fc.summary()}")
    data = FootageClipData(fc, backbone, cfg.clips_per_epoch, augment=not args.no_augment,
                           synthetic_share=args.synthetic_share)
    torch.manual_seed(0)
    model = ApproxBitConfiguration.from_training_config(backbone, cfg)
    t0 = time.time()
    train_configuration(model, cfg, progress=False, data=data, on_epoch=lambda e: print(
        f"{cfg.config_id} epoch {e['epoch']}: task {e['task']:.3f} recon {e['recon']:.3f} | val agreement "
        f"{e['val_agree_top1']:.3f} (non-majority {e['val_agree_top1_minority']:.3f}) KL {e['val_kl_to_backbone']:.3f} "
        f"[{time.time() - t0:.0f} s]", flush=True))
    for split in ("train", "test"):
        r = evaluate_configuration(model, split, 0, data=data)
        print(f"{split}: " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in r.items()))


if __name__ == "__main__":
    main()
