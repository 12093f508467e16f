#!/usr/bin/env python3
"""Label-free ApproxBit codecs for a split vision-language model, end to end on a tiny
LLaVA-OneVision (approxbit_ros/vlm/tiny_model.py) and real footage (vtest, bikes, Megamind):

1. the tiny model is written with random weights and fine-tuned to look at the video
   (``fine_tune_teacher``: two templated questions answered from what the pixels say) on the
   training clips; then it is frozen and is the teacher;
2. its greedy answers to every (clip, question) are the targets; each codec configuration
   (codebook K x spatial encoder on / off) is trained on the training clips by Eq. 3 with the
   answer tokens' cross-entropy (approxbit_ros/vlm/codec_training.py), AdamW at --lr;
3. the checkpoint with the best answer agreement on the validation clips is kept (every
   --eval-every steps); the test clips are touched once, to report: the share of (clip,
   question) pairs whose answer through the codec equals the uncompressed model's, with a Wilson
   95 % interval; DNN-Surgery's float16 tokens beside them, and the teacher's answer histogram.

Clips are split by time segments within each video (4-clip segments, shuffled with the seed,
dealt 60 / 15 / 25 % to train, validation and test; the first clip of each segment dropped, so
no frame is in two splits).
Ties in validation agreement go to the later checkpoint.

    tools/ros_env.sh python bench/bench_tiny_vlm_codecs.py [--seed 0] [--codec-steps 3000]
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
VIDEOS = (("vtest.avi", 6), ("bikes.mp4", 3), ("Megamind.avi", 6))


def splits(seed: int):
    from approxbit_ros.vlm.codec_training import split_clips
    from approxbit_ros.vlm.tiny_model import footage_clips

    return split_clips([footage_clips(os.path.join(ROOT, "data", "footage", name), step=step, stride=3)
                        for name, step in VIDEOS], seed)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--split-layer", type=int, default=2)
    ap.add_argument("--teacher-steps", type=int, default=2500)
    ap.add_argument("--codec-steps", type=int, default=3000)
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--configs", default="8:noenc,16:noenc,8:enc,16:enc", help="K:enc|noenc,...")
    ap.add_argument("--max-new-tokens", type=int, default=2)
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    torch.set_num_threads(2)
    from approxbit_ros.vlm.codec_training import (VlmCodec, VlmSample, answer_agreement, teacher_answers,
                                                  train_with_validation)
    from approxbit_ros.vlm.profiling import wilson_interval
    from approxbit_ros.vlm.split_llava import SplitLlavaOnevision
    from approxbit_ros.vlm.tiny_model import QUESTIONS, fine_tune_teacher, write_tiny_llava

    t0 = time.time()
    folder = write_tiny_llava(tempfile.mkdtemp(prefix="tiny-llava-"), seed=args.seed)
    split = SplitLlavaOnevision.from_pretrained(folder, split_layer=args.split_layer)
    clips = splits(args.seed)
    print(f"clips: {', '.join(f'{k} {len(v)}' for k, v in clips.items())} (x {len(QUESTIONS)} questions)", flush=True)
    losses = fine_tune_teacher(split, clips["train"], steps=args.teacher_steps, seed=args.seed)
    print(f"teacher fine-tuned: loss {np.mean(losses[:100]):.3f} -> {np.mean(losses[-100:]):.3f}", flush=True)
    samples = {k: [VlmSample(c, q) for c in v for q in QUESTIONS] for k, v in clips.items()}
    for v in samples.values():
        teacher_answers(split, v, args.max_new_tokens)
    hist = collections.Counter(split.tokenizer.decode(s.answer_ids, skip_special_tokens=True).strip()
                               for s in samples["test"])
    print(f"teacher's answers on the test pairs: {dict(hist.most_common())}", flush=True)
    n_test = len(samples["test"])
    fp16 = answer_agreement(split, None, samples["test"], args.max_new_tokens)
    rows = [{"config": "DNN-Surgery (float16 tokens)", "test_agreement": fp16,
             "interval": wilson_interval(round(fp16 * n_test), n_test)}]
    for spec in args.configs.split(","):
        k, enc = spec.split(":")
        codec = VlmCodec.build(split.config.vision_config.hidden_size, int(k), enc == "enc", seed=args.seed)
        state = os.path.join(tempfile.mkdtemp(), "codec.pt")
        scores = train_with_validation(split, codec, samples, args.codec_steps, args.eval_every, args.max_new_tokens,
                                       state, lr=args.lr, seed=args.seed, progress=False)
        best, best_val, best_step, test = codec, scores["val_agreement"], scores["best_step"], scores["test_agreement"]
        per_q = {q: answer_agreement(split, best, [x for x in samples["test"] if x.question == q], args.max_new_tokens)
                 for q in QUESTIONS}
        rows.append({"config": f"K={k} {'Enc' if enc == 'enc' else 'NoEnc'}", "best_step": best_step,
                     "val_agreement": best_val, "test_agreement": test,
                     "interval": wilson_interval(round(test * n_test), n_test), "per_question": per_q})
        print(f"K={k} {enc}: best validation {best_val:.3f} at step {best_step}; test {test:.3f}", flush=True)
    print(f"\nseed {args.seed}, split after vision layer {args.split_layer}, lr {args.lr}, {n_test} held-out test pairs, "
          f"{time.time() - t0:.0f} s")
    print("| configuration | chosen step (validation) | validation agreement | test agreement [95 % interval] | "
          + " | ".join(f"test: {q}" for q in QUESTIONS) + " |")
    print("|---|---|---|---|" + "---|" * len(QUESTIONS))
    for r in rows:
        lo, hi = r["interval"]
        per_q = " | ".join(f"{r['per_question'][q]:.3f}" if "per_question" in r else "-" for q in QUESTIONS)
        print(f"| {r['config']} | {r.get('best_step', '-')} | {r.get('val_agreement', float('nan')):.3f} | "
              f"{r['test_agreement']:.3f} [{lo:.3f}, {hi:.3f}] | {per_q} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"seed": args.seed, "teacher_histogram": dict(hist), "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
