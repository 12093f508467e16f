"""approxbit_train_vqa: train the video question-answering head of a trained backbone (backbone
and configurations frozen) on the synthetic action clips' templated questions, write it next to
the backbone (``vqa/``), and print its answer accuracy on the test split through every
configuration, beside the no-video baseline. The same table goes to ``vqa/eval.txt`` and the
numbers into ``vqa/config.json``.

    approxbit_train_vqa --backbone models/approxbit/cnn3d-actions
    approxbit_train_vqa --backbone models/approxbit/cnn3d-actions --eval-only

By default (``--train-on all``) the head learns from the maps edge-only and every coded
configuration deliver, one head for every configuration (about 25 min here, most of it running
the codecs over the training clips); ``--train-on edge_only`` learns from the whole backbone's
maps only (5 min), and loses 1-4 points through the codes.

With the backbone's action lookup table (``approxbit_profile``, default ``<backbone>/lut_cpu.json``)
it also writes the VQA lookup table ``vqa/lut_cpu.json``: the same configurations, bytes and times
plus the head's, with answer accuracy, for the link monitor (``lookup_tables``) to hold an accuracy
SLA on answers.
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


def write_vqa_table(head, action_table: str, results: dict, clips: int, path: str, command: str) -> None:
    from approxbit_ros.vqa.profiling import head_latency_ms, vqa_lookup_table
    from offload_common.lookup_table import LookupTable

    lut = vqa_lookup_table(LookupTable.load(action_table), results, head_latency_ms(head), clips)
    lut.meta["command"] = command
    lut.save(path)
    print(f"VQA lookup table ({len(lut.entries)} configurations, times from {action_table}, "
          f"head {lut.meta['head_ms']:.2f} ms) -> {path}")


def refresh_table(args, out: str, command: str) -> int:
    """The VQA table rebuilt from the current action table (bytes, times) and the accuracies of the
    VQA table already in ``out``; the head's latency is measured again."""
    from approxbit_ros.vqa.model import VqaHead
    from offload_common.lookup_table import LookupTable

    path = os.path.join(out, "lut_cpu.json")
    old = LookupTable.load(path)
    results = {e.config_id: {"all": e.accuracy, "action_top1": e.extra["action_top1"],
                             **{k[len("vqa/"):]: v for k, v in e.extra.items() if k.startswith("vqa/")}}
               for e in old.entries}
    clips = int(old.entries[0].extra["clips"])
    action_table = args.action_table or os.path.join(args.backbone, "lut_cpu.json")
    write_vqa_table(VqaHead.from_pretrained(out), action_table, results, clips, path,
                    f"{command} (accuracies from: {old.meta.get('command', 'the previous table')})")
    return 0


@path_errors_in_one_line("approxbit_train_vqa")
def main(argv=None) -> int:
    import torch

    from approxbit_ros.configurations import ConfigurationSet
    from approxbit_ros.vqa.model import VqaHead, vqa_folder
    from approxbit_ros.vqa.questions import QUESTION_TYPE_NAMES
    from approxbit_ros.vqa.training import (TRAIN_ON, VqaTrainingConfig, blind_accuracy, evaluate_configurations,
                                            new_head, split_answers, split_features, train_head, training_sources)

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
    ap.add_argument("--train-on", choices=TRAIN_ON, default=defaults.train_on,
                    help="maps to learn from: the whole backbone's, or also every coded configuration's")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--action-table", default="",
                    help="action lookup table for the VQA table's bytes and times (default <backbone>/lut_cpu.json "
                         "when it exists; 'none': write no VQA table)")
    ap.add_argument("--eval-only", action="store_true", help="evaluate the head already in --out")
    ap.add_argument("--refresh-table", action="store_true",
                    help="only rewrite <out>/lut_cpu.json with the action table's current bytes and times, keeping "
                         "the VQA accuracies it holds (after a change that cannot move them, e.g. lossless coding)")
    args = ap.parse_args(argv)
    if min(args.train_clips, args.epochs, args.eval_clips) < 1:
        ap.error("--train-clips, --epochs and --eval-clips must be positive")
    torch.set_num_threads(args.threads)
    out = args.out or vqa_folder(args.backbone)
    if args.refresh_table:
        return refresh_table(args, out, "approxbit_train_vqa " + " ".join(sys.argv[1:] if argv is None else argv))
    configs = ConfigurationSet.from_pretrained(args.backbone)
    cfg = VqaTrainingConfig(train_clips=args.train_clips, epochs=args.epochs, lr=args.lr, seed=args.seed,
                            eval_clips=args.eval_clips, train_on=args.train_on)
    t0 = time.time()
    if args.eval_only:
        head = VqaHead.from_pretrained(out)
        train_answers = split_answers("train", cfg.train_clips, head.config.answers)
    else:
        head = new_head(configs)
        sources = training_sources(configs, cfg.train_on)
        train = [split_features(configs, "train", cfg.train_clips, cid, head.config.answers, progress=True)
                 for cid in sources]
        losses = train_head(head, train, cfg)
        train_answers = train[0].answers
        print(f"trained on {cfg.train_clips} clips x {len(QUESTION_TYPE_NAMES)} question types "
              f"from {len(sources)} source(s), "
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
    action_table = args.action_table or os.path.join(args.backbone, "lut_cpu.json")
    if args.action_table != "none" and (args.action_table or os.path.exists(action_table)):
        write_vqa_table(head, action_table, results, cfg.eval_clips, os.path.join(out, "lut_cpu.json"), command)
    print(f"-> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
