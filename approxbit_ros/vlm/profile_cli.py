"""approxbit_profile_vlm: the link monitor's lookup table for a split vision-language model (a local
LLaVA-OneVision snapshot and the codecs approxbit_train_vlm_codecs made for it), measured on the
held-out test clips of the same footage and questions (by default those the codecs were trained
with, from the codec folder's summary.json):

  approxbit_profile_vlm --snapshot /path/llava-onevision-qwen2-0.5b-ov-hf

Accuracy is agreement with the uncompressed model's greedy answer (95 % Wilson interval in the
entry's extra); bytes and times per clip as approxbit_profile measures them, the server's including
the answer's generation. Written to ``--out`` (default ``<codecs>/lut_cpu.json``); give it to
link_monitor's ``lookup_tables`` to hold a latency or accuracy SLA on the answers.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Optional, Sequence

from offload_common.cli import path_errors_in_one_line


def spread(samples: Sequence, n: int) -> list:
    """At most ``n`` of ``samples``, evenly spaced (the test split lists clips video by video)."""
    if len(samples) <= n:
        return list(samples)
    return [samples[round(i * (len(samples) - 1) / (n - 1))] for i in range(n)] if n > 1 else [samples[0]]


@path_errors_in_one_line("approxbit_profile_vlm")
def main(argv: Optional[Sequence[str]] = None) -> int:
    from approxbit_ros.vlm.train_cli import CLIP_DEFAULTS, add_clip_arguments, footage_samples, read_questions

    ap = argparse.ArgumentParser(prog="approxbit_profile_vlm", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--snapshot", required=True, help="local LLaVA-OneVision snapshot folder")
    ap.add_argument("--codecs", default="", help="codec folder (default <snapshot>/approxbit)")
    ap.add_argument("--footage", nargs="+", default=None, help="video files or folders (default: the training footage)")
    ap.add_argument("--questions", default=None, help="text file, one question per line (default: the training ones)")
    ap.add_argument("--out", default="", help="lookup table to write (default <codecs>/lut_cpu.json)")
    add_clip_arguments(ap, defaults=False)
    ap.add_argument("--max-new-tokens", type=int, default=None)
    ap.add_argument("--pairs", type=int, default=400, help="held-out (clip, question) pairs scored (at most, "
                    "evenly spaced over the test split)")
    ap.add_argument("--timing-pairs", type=int, default=20, help="pairs timed per configuration")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (the nodes' torch_threads)")
    args = ap.parse_args(argv)
    if not os.path.isfile(os.path.join(args.snapshot, "config.json")):
        ap.error(f"--snapshot {args.snapshot}: no config.json (a local LLaVA-OneVision snapshot folder)")
    codecs = args.codecs or os.path.join(args.snapshot, "approxbit")
    summary_path = os.path.join(codecs, "summary.json")
    trained = {}
    if os.path.isfile(summary_path):
        with open(summary_path) as f:
            trained = json.load(f)
    defaults = {**CLIP_DEFAULTS, "max_new_tokens": 32}      # 32: the nodes' vlm_max_new_tokens
    for k in defaults:
        if getattr(args, k) is None:
            setattr(args, k, trained.get(k, defaults[k]))
    footage = args.footage or trained.get("footage")
    if not footage:
        ap.error(f"--footage: no recordings given and none in {summary_path}")
    questions = read_questions(args.questions) if args.questions is not None else \
        trained.get("questions") or read_questions(None)
    import torch

    from approxbit_ros.vlm.configurations import load_vlm_configurations
    from approxbit_ros.vlm.profiling import profile_vlm_configurations

    torch.set_num_threads(args.threads)
    t0 = time.time()
    configs = load_vlm_configurations(args.snapshot, codecs)
    configs.clip_frames, configs.clip_size = args.frames, configs.backbone.split.image_size
    try:
        samples = spread(footage_samples(configs.backbone.split, footage, questions, args)["test"], args.pairs)
    except ValueError as exc:
        ap.error(str(exc))
    if not samples:
        ap.error("no held-out test clips in that footage")
    print(f"{'config':34s} {'agree':>6s} {'95% CI':>13s} {'bytes':>8s} {'edge':>8s} {'enc':>6s} {'dec':>6s} "
          f"{'server':>8s}  (ms, median per clip)", flush=True)

    def show(e):
        print(f"{e.config_id:34s} {e.accuracy:6.3f} [{e.extra['agreement_lo']:.3f}, {e.extra['agreement_hi']:.3f}] "
              f"{e.bytes:8.0f} {e.edge_ms:8.1f} {e.encode_ms:6.2f} {e.decode_ms:6.2f} {e.server_ms:8.1f}", flush=True)

    lut = profile_vlm_configurations(configs, samples, args.max_new_tokens, args.timing_pairs, on_entry=show)
    lut.meta["command"] = "approxbit_profile_vlm " + " ".join(sys.argv[1:] if argv is None else argv)
    lut.meta["seconds"] = round(time.time() - t0)
    out = args.out or os.path.join(codecs, "lut_cpu.json")
    lut.save(out)
    print(f"wrote {out} ({len(lut.entries)} entries, {lut.meta['seconds']} s); run the nodes with clip_frames "
          f"{args.frames} and vlm_max_new_tokens {args.max_new_tokens}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
