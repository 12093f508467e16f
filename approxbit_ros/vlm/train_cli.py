"""approxbit_train_vlm_codecs: ApproxBit codecs for a vision-language model split inside its vision
encoder (a local LLaVA-OneVision snapshot), trained label-free on your recordings: the frozen
model's own greedy answers to templated questions are the targets (codec_training.py).

  approxbit_train_vlm_codecs --snapshot /path/llava-onevision-qwen2-0.5b-ov-hf --footage /path/videos \\
      [--questions questions.txt] [--split-layer 8] [--configs 128:noenc,256:noenc,128:enc,256:enc]

Clips (``--frames`` frames ``--frame-stride`` apart, one every ``--clip-step`` frames) are split
by shuffled time segments 60 / 15 / 25 % into train / validation / test; each configuration keeps
its best-validation checkpoint and reports test agreement with the uncompressed model. Written to
``--out`` (default ``<snapshot>/approxbit``): ``k<K>-<enc|noenc>.safetensors`` and ``.json``
(codec, split layer, snapshot, scores) and ``summary.json`` with the teacher's answer histogram.
Resumable: the training states stay in ``<out>/state`` until a configuration is done.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time
from typing import Optional, Sequence

from offload_common.cli import path_errors_in_one_line


def read_questions(path: Optional[str]) -> list:
    if not path:
        from approxbit_ros.vqa.questions import QUESTION_TYPES

        return [q.phrasings[0] for q in QUESTION_TYPES]
    with open(path) as f:
        questions = [line.strip() for line in f if line.strip() and not line.lstrip().startswith("#")]
    if not questions:
        raise ValueError(f"{path}: no questions (one per line)")
    return questions


CLIP_DEFAULTS = {"frames": 8, "frame_stride": 4, "clip_step": 16, "max_frames_per_video": 2000, "seed": 0}


def add_clip_arguments(ap, defaults: bool = True) -> None:
    """How clips are cut from the footage and split (the profiler reuses the trainer's)."""
    d = CLIP_DEFAULTS if defaults else dict.fromkeys(CLIP_DEFAULTS)
    ap.add_argument("--frames", type=int, default=d["frames"], help="frames per clip (the nodes' clip_frames)")
    ap.add_argument("--frame-stride", type=int, default=d["frame_stride"], help="frames apart within a clip")
    ap.add_argument("--clip-step", type=int, default=d["clip_step"], help="frames between clip starts")
    ap.add_argument("--max-frames-per-video", type=int, default=d["max_frames_per_video"])
    ap.add_argument("--seed", type=int, default=d["seed"], help="seed of the train / validation / test split")


def footage_samples(split, footage: Sequence[str], questions: Sequence[str], args) -> dict:
    """Clips of the recordings at the model's image size, split by shuffled time segments, times
    the questions: {"train" | "val" | "test": [VlmSample]}."""
    from approxbit_ros.data.footage import find_recordings
    from approxbit_ros.vlm.codec_training import VlmSample, split_clips
    from approxbit_ros.vlm.tiny_model import footage_clips

    recordings = find_recordings(footage)
    bags = [r.path for r in recordings if r.kind == "bag"]
    if bags:
        raise ValueError(f"ROS bags are not read here yet ({bags[0]}): give video files")
    size = (split.image_size, split.image_size)
    videos = [footage_clips(r.path, frames=args.frames, stride=args.frame_stride, step=args.clip_step, size=size,
                            limit=args.max_frames_per_video) for r in recordings]
    clips = split_clips([v for v in videos if v], args.seed)
    print(f"{sum(len(v) for v in clips.values())} clips from {len(recordings)} recordings "
          f"({', '.join(f'{k} {len(v)}' for k, v in clips.items())}) x {len(questions)} questions", flush=True)
    return {k: [VlmSample(c, q) for c in v for q in questions] for k, v in clips.items()}


def parse_configs(text: str) -> list:
    out = []
    for spec in text.split(","):
        k, _, kind = spec.strip().partition(":")
        if not k.isdigit() or int(k) < 1 or kind not in ("enc", "noenc"):
            raise ValueError(f"--configs entry {spec!r}: expected K:enc or K:noenc (e.g. 128:enc)")
        out.append((int(k), kind == "enc"))
    return out


@path_errors_in_one_line("approxbit_train_vlm_codecs")
def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="approxbit_train_vlm_codecs", description=__doc__.split("\n")[0])
    ap.add_argument("--snapshot", required=True, help="local LLaVA-OneVision snapshot folder")
    ap.add_argument("--footage", nargs="+", required=True, help="video files or folders (searched recursively)")
    ap.add_argument("--questions", default="", help="text file, one question per line (default: the built-in templates)")
    ap.add_argument("--out", default="")
    ap.add_argument("--split-layer", type=int, default=8)
    ap.add_argument("--configs", default="128:noenc,256:noenc,128:enc,256:enc")
    add_clip_arguments(ap)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    try:
        configs = parse_configs(args.configs)
        questions = read_questions(args.questions)
    except ValueError as exc:
        ap.error(str(exc))
    if args.eval_every < 1 or args.steps < args.eval_every:
        ap.error("--steps must be at least --eval-every (>= 1)")
    import torch

    from approxbit_ros.vlm.codec_training import VlmCodec, teacher_answers, train_with_validation
    from approxbit_ros.vlm.split_llava import SplitLlavaOnevision, snapshot_fingerprint

    torch.set_num_threads(args.threads)
    t0 = time.time()
    split = SplitLlavaOnevision.from_pretrained(args.snapshot, split_layer=args.split_layer)
    try:
        samples = footage_samples(split, args.footage, questions, args)
    except ValueError as exc:
        ap.error(str(exc))
    if not samples["train"] or not samples["val"]:
        ap.error(f"too little footage: {len(samples['train'])} training and {len(samples['val'])} validation pairs")
    for kind in samples:
        teacher_answers(split, samples[kind], args.max_new_tokens)
    histogram = collections.Counter(split.tokenizer.decode(s.answer_ids, skip_special_tokens=True).strip()
                                    for s in samples["train"])
    print(f"teacher's answers (training pairs): {dict(histogram.most_common(10))}", flush=True)
    out = args.out or os.path.join(args.snapshot, "approxbit")
    snapshot_id = snapshot_fingerprint(args.snapshot)
    rows = []
    for k, enc in configs:
        codec = VlmCodec.build(split.config.vision_config.hidden_size, k, enc, seed=args.seed)
        state = os.path.join(out, "state", codec.name + ".pt")
        scores = train_with_validation(split, codec, samples, args.steps, args.eval_every, args.max_new_tokens, state,
                                       lr=args.lr, seed=args.seed)
        codec.save(out, split_layer=args.split_layer, snapshot=os.path.abspath(args.snapshot),
                   snapshot_config_sha256=snapshot_id, questions=questions, **scores)
        if os.path.exists(state):
            os.remove(state)
        rows.append({"config": codec.name, **scores})
        print(f"{codec.name}: validation {scores['val_agreement']:.3f} (step {scores['best_step']}), test "
              f"{scores['test_agreement']:.3f} on {scores['test_pairs']} pairs", flush=True)
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump({"command": " ".join(["approxbit_train_vlm_codecs"] + list(argv if argv is not None else sys.argv[1:])),
                   "seconds": round(time.time() - t0), "teacher_histogram": dict(histogram), "configs": rows,
                   "footage": [os.path.abspath(p) for p in args.footage], "questions": questions,
                   "max_new_tokens": args.max_new_tokens, **{k: getattr(args, k) for k in CLIP_DEFAULTS}},
                  f, indent=1)
    print(f"wrote {len(rows)} configurations to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
