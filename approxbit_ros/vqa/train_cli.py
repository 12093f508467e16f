"""approxbit_train_vqa: train the video question-answering head of a trained backbone (backbone
and configurations frozen) on the synthetic action clips' templated questions, write it next to
the backbone (``vqa/``), and print its answer accuracy on the test split through every
configuration, beside the no-video baseline. The same table goes to ``vqa/eval.txt`` and the
numbers into ``vqa/config.json``.

    approxbit_train_vqa --backbone models/approxbit/cnn3d-actions
    approxbit_train_vqa --backbone models/approxbit/cnn3d-actions --eval-only
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import asdict

from offload_common.cli import path_errors_in_one_line


def accuracy_table(results: dict, blind: dict, types) -> str:
    """One row per configuration: all questions, each question type, action top-1."""
    short = {t: t.replace(" place", "@") for t in types}
    head = f"{'configuration':<26}{'all':>7}" + "".join(f"{short[t]:>10}" for t in types) + f"{'VAR top-1':>11}"
    rows = [head, "-" * len(head)]
    for cid, acc in list(results.items()) + [("no video (blind)", blind)]:
        top1 = f"{acc['action_top1']:>11.3f}" if "action_top1" in acc else f"{'':>11}"
        rows.append(f"{cid:<26}{acc['all']:>7.3f}" + "".join(f"{acc[t]:>10.3f}" for t in types) + top1)
    rows.append("(@: where the object is: start@ at the first frame, end@ at the last)")
    return "\n".join(rows)


@path_errors_in_one_line("approxbit_train_vqa")
def main(argv=None) -> int:
    import torch

    from approxbit_ros.configurations import ConfigurationSet
    from approxbit_ros.vqa.model import VqaHead, vqa_folder
    from approxbit_ros.vqa.questions import QUESTION_TYPE_NAMES
    from approxbit_ros.vqa.training import (VqaTrainingConfig, blind_accuracy, evaluate_configurations, new_head,
                                            split_answers, split_features, train_head)

    defaults = VqaTrainingConfig()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", required=True, help="trained backbone folder (with configs/)")
    ap.add_argument("--out", default="", help="output folder (default: <backbone>/vqa)")
    ap.add_argument("--train-clips", type=int, default=defaults.train_clips)
    ap.add_argument("--epochs", type=int, default=defaults.epochs)
    ap.add_argument("--lr", type=float, default=defaults.lr)
    ap.add_argument("--seed", type=int, default=defaults.seed)
    ap.add_argument("--eval-clips", type=int, default=defaults.eval_clips,
                    help="test clips per configuration (a multiple of 13 keeps the classes balanced)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--eval-only", action="store_true", help="evaluate the head already in --out")
    args = ap.parse_args(argv)
    if min(args.train_clips, args.epochs, args.eval_clips) < 1:
        ap.error("--train-clips, --epochs and --eval-clips must be positive")
    torch.set_num_threads(args.threads)
    configs = ConfigurationSet.from_pretrained(args.backbone)
    out = args.out or vqa_folder(args.backbone)
    cfg = VqaTrainingConfig(train_clips=args.train_clips, epochs=args.epochs, lr=args.lr, seed=args.seed,
                            eval_clips=args.eval_clips)
    t0 = time.time()
    if args.eval_only:
        head = VqaHead.from_pretrained(out)
        train_answers = split_answers("train", cfg.train_clips, head.config.answers)
    else:
        head = new_head(configs)
        train = split_features(configs, "train", cfg.train_clips, answers=head.config.answers, progress=True)
        losses = train_head(head, train, cfg)
        train_answers = train.answers
        print(f"trained on {cfg.train_clips} clips x {len(QUESTION_TYPE_NAMES)} question types, "
              f"{cfg.epochs} epochs, final loss {losses[-1]:.4f} ({time.time() - t0:.0f} s)", flush=True)
    results = evaluate_configurations(head, configs, cfg.eval_clips)
    blind = blind_accuracy(train_answers, split_answers("test", cfg.eval_clips, head.config.answers))
    table = accuracy_table(results, blind, QUESTION_TYPE_NAMES)
    command = "approxbit_train_vqa " + " ".join(sys.argv[1:] if argv is None else argv)
    print(table)
    if not args.eval_only:
        head.save_pretrained(out, extra={"trained_by": command, "training": asdict(cfg),
                                         "test": results, "blind": blind, "seconds": round(time.time() - t0)})
    with open(os.path.join(out, "eval.txt"), "w") as f:
        f.write(f"$ {command}\n{configs.name}, {cfg.eval_clips} test clips, every phrasing of every question\n"
                f"{table}\n")
    print(f"-> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
