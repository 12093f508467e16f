"""approxbit_train_backbone: train a backbone from scratch on the synthetic action dataset and
save it (config.json + model.safetensors), with the command and seed that reproduce it.

    approxbit_train_backbone --backbone cnn3d --out models/approxbit/cnn3d-actions
    approxbit_train_backbone --backbone videomae --epochs 20 --lr 5e-4 --weight-decay 0.05 --grad-clip 1 \
        --teacher models/approxbit/cnn3d-actions --out models/approxbit/videomae-actions \
        --checkpoint-dir build/videomae_ckpt

--teacher distils a trained backbone into this one (soft logits + feature hints, see
approxbit_ros/training/distillation.py): from scratch, the small VideoMAE stays at chance.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict

from offload_common.cli import path_errors_in_one_line


def build(name: str):
    if name == "cnn3d":
        from approxbit_ros.backbones.cnn3d import Cnn3dBackbone, Cnn3dConfig

        return Cnn3dBackbone(Cnn3dConfig())
    if name == "videomae":
        from approxbit_ros.backbones.videomae import VideoMaeBackbone, small_videomae_config
        from approxbit_ros.data.synthetic_actions import CLASSES

        return VideoMaeBackbone.from_config(small_videomae_config(len(CLASSES), CLASSES))
    raise SystemExit(f"unknown backbone {name!r} (expected: cnn3d or videomae)")


@path_errors_in_one_line("approxbit_train_backbone")
def main(argv=None) -> int:
    import torch

    from approxbit_ros.training.backbone_training import BackboneTrainer, BackboneTrainingConfig, config_dict, evaluate

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", default="cnn3d")
    ap.add_argument("--out", required=True)
    ap.add_argument("--checkpoint-dir", default="")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--clips-per-epoch", type=int, default=2600)
    ap.add_argument("--single-frame", action="store_true", help="baseline without temporal information")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--grad-clip", type=float, default=0.0, help="max gradient norm (0: off)")
    ap.add_argument("--warmup", type=float, default=0.15, help="fraction of steps of learning-rate warm-up")
    ap.add_argument("--teacher", default="", help="trained backbone folder to distil from")
    ap.add_argument("--hints", default="3:4,6:6", help="student_layer:teacher_block feature hints")
    ap.add_argument("--distill-alpha", type=float, default=0.5, help="weight of the soft-logit term vs CE")
    ap.add_argument("--hint-weight", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = build(args.backbone)
    cfg = BackboneTrainingConfig(epochs=args.epochs, clips_per_epoch=args.clips_per_epoch, seed=args.seed,
                                 lr=args.lr, weight_decay=args.weight_decay,
                                 grad_clip=args.grad_clip, single_frame=args.single_frame, warmup=args.warmup)
    distiller = distillation = None
    if args.teacher:
        from approxbit_ros.configurations import load_backbone
        from approxbit_ros.training.distillation import DistillationConfig, Distiller, parse_hints

        distillation = DistillationConfig(args.teacher, parse_hints(args.hints), args.distill_alpha,
                                          hint_weight=args.hint_weight)
        distiller = Distiller(model, load_backbone(args.teacher)[0], distillation)
    t0 = time.time()
    history = BackboneTrainer(model, cfg, distiller).train(args.checkpoint_dir or None,
                                                           on_epoch=lambda s: print(f"epoch {s}", flush=True))
    test = evaluate(model, "test", 1300, args.single_frame)
    print(f"test top-1 {test['top1']:.3f} top-5 {test['top5']:.3f} ({time.time() - t0:.0f} s)", flush=True)
    model.save_pretrained(args.out, extra={
        "trained_by": "approxbit_train_backbone " + " ".join(sys.argv[1:] if argv is None else argv),
        "training": config_dict(cfg), "distillation": asdict(distillation) if distillation else None,
        "history": history, "test": test, "train_seconds": round(time.time() - t0)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
