#!/usr/bin/env python3
"""LLaVA-OneVision-0.5B's published architecture (typed here: SigLIP so400m-patch14-384 with 26
layers, Qwen2-0.5B with 24 layers, the 2-layer GELU projector; random weights, nothing
downloaded) split after vision layer --split (8, as the paper): what each configuration sends per
frame and per 32-frame clip against float16 and float32 vision tokens (the paper's ratio figure),
edge ms per frame for the layers before the split and the binary encoder, server ms for the rest
(decoder, vision layers after the split, projector and pooling, the language model's prefill),
and a Table-2-style latency by Eq. 1 at 3 / 6 / 50 Mbit/s. Accuracy cannot be measured here:
these are random weights.

Vision and decoder times are measured on --frames frames and scaled to 32 (every frame goes
through the vision tower on its own; the decoder is convolutional in time); the prefill is
measured at --frames frames' tokens and scaled linearly to 32 frames (attention's quadratic part
is small at this size, so this underestimates it slightly). Server-only sends the 32 frames as
H.264 (libx264 through PyAV, CRF 23, 384x384 frames of real footage).

    tools/ros_env.sh python bench/bench_llava_ov_split.py [--frames 2] [--threads 2]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
CLIP = 32
BANDWIDTHS = (3.0, 6.0, 50.0)


def ov_05b_config():
    from transformers import LlavaOnevisionConfig, Qwen2Config, SiglipVisionConfig

    vision = SiglipVisionConfig(hidden_size=1152, intermediate_size=4304, num_hidden_layers=26, num_attention_heads=16,
                                image_size=384, patch_size=14, hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6)
    text = Qwen2Config(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                       num_key_value_heads=2, vocab_size=152000, max_position_embeddings=32768, rope_theta=1000000.0,
                       tie_word_embeddings=True, rms_norm_eps=1e-6)
    return LlavaOnevisionConfig(vision_config=vision, text_config=text, vision_feature_layer=-1,
                                vision_feature_select_strategy="full", image_token_id=151646, video_token_id=151647)


def timed(fn, runs=2):
    fn()
    t = time.perf_counter()
    for _ in range(runs):
        out = fn()
    return out, 1000 * (time.perf_counter() - t) / runs


def h264_clip_bytes(size: int = 384) -> int:
    import av
    import cv2

    cap = cv2.VideoCapture(os.path.join(ROOT, "data", "footage", "vtest.avi"))
    container = av.open(os.devnull, "w", format="h264")
    stream = container.add_stream("libx264", rate=8)
    stream.width = stream.height = size
    stream.pix_fmt = "yuv420p"
    stream.options = {"crf": "23", "preset": "veryfast"}
    total = 0
    for i in range(CLIP * 3):
        ok, bgr = cap.read()
        if i % 3:
            continue
        rgb = cv2.resize(np.ascontiguousarray(bgr[:, :, ::-1]), (size, size))
        for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
            total += packet.size
    for packet in stream.encode():
        total += packet.size
    container.close()
    return total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--split", type=int, default=8)
    ap.add_argument("--frames", type=int, default=2, help="frames measured (scaled to 32)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from transformers import LlavaOnevisionForConditionalGeneration

    from approxbit_ros.codec.binary_codec import BinaryCodecConfig, BinaryDecoder, BinaryEncoder
    from approxbit_ros.vlm.split_llava import SplitLlavaOnevision

    t = time.perf_counter()
    torch.manual_seed(0)
    model = LlavaOnevisionForConditionalGeneration(ov_05b_config()).eval()
    params = sum(p.numel() for p in model.parameters())
    print(f"LLaVA-OneVision-0.5B architecture, random weights: {params / 1e6:.0f} M parameters, built in "
          f"{time.perf_counter() - t:.0f} s; {args.threads} threads, torch {torch.__version__}", flush=True)
    split = SplitLlavaOnevision(model, tokenizer=None, split_layer=args.split)
    f = args.frames
    pixels = torch.randn(1, f, 3, 384, 384)
    with torch.no_grad():
        tokens, edge_ms = timed(lambda: split.edge_tokens(pixels), runs=1)
        feats, vision_server_ms = timed(lambda: split.server_video_features(tokens), runs=1)
    n, d = tokens.shape[1], tokens.shape[2]
    grid = split.grid
    print(f"split after vision layer {args.split}: {n} tokens x {d} per frame ({grid}x{grid}); "
          f"{feats.shape[1] - 1} language tokens per {f} frames", flush=True)
    # language model prefill on f frames' video tokens and a short question
    embeds = torch.cat([feats, torch.randn(1, 24, feats.shape[2])], dim=1)
    with torch.no_grad():
        _, prefill_ms = timed(lambda: model(inputs_embeds=embeds, logits_to_keep=1), runs=1)
    per_frame = {"edge": edge_ms / f, "vision_server": vision_server_ms / f, "prefill": prefill_ms / f}
    print(f"per frame: edge (embeddings + {args.split} layers) {per_frame['edge']:.0f} ms, server vision layers "
          f"+ projector {per_frame['vision_server']:.0f} ms, prefill {per_frame['prefill']:.0f} ms", flush=True)

    fmap = split.tokens_to_map(tokens)                      # (1, D, f, h, w)
    rows = []
    float32_frame, float16_frame = n * d * 4, n * d * 2
    for enc in (False, True):
        for k in (128, 256):
            cfg = BinaryCodecConfig(channels=d, codebook_size=k, spatial_encoder=enc, spatial_mixing="dense")
            encoder, decoder = BinaryEncoder(cfg).eval(), BinaryDecoder(cfg).eval()
            with torch.no_grad():
                codes, enc_ms = timed(lambda: encoder.encode_bits(fmap), runs=1)
                _, dec_ms = timed(lambda: decoder(codes.float(), tuple(fmap.shape[2:])), runs=1)
            clip_positions = (codes.shape[2] * CLIP // f) * codes.shape[3] * codes.shape[4]
            clip_bytes = (k * clip_positions + 7) // 8
            rows.append((f"ApproxBit K={k} {'Enc' if enc else 'NoEnc'}", clip_bytes,
                         CLIP * (per_frame["edge"] + enc_ms / f),
                         CLIP * (dec_ms / f + per_frame["vision_server"] + per_frame["prefill"])))
    rows.append(("DNN-Surgery (float16 tokens)", CLIP * float16_frame, CLIP * per_frame["edge"],
                 CLIP * (per_frame["vision_server"] + per_frame["prefill"])))
    rows.append(("Edge-only (whole model on the edge)", 0,
                 CLIP * (per_frame["edge"] + per_frame["vision_server"] + per_frame["prefill"]), 0.0))
    h264 = h264_clip_bytes()
    rows.append(("Server-only (32 frames as H.264)", h264, 0.0,
                 CLIP * (per_frame["edge"] + per_frame["vision_server"] + per_frame["prefill"])))

    print(f"\nbytes (per 32-frame clip / per frame) and ratio against the vision tokens at layer {args.split} "
          f"({n} x {d} per frame: float16 {float16_frame} B, float32 {float32_frame} B per frame)")
    print("| configuration | bytes per clip | bytes per frame | vs float16 | vs float32 |")
    print("|---|---|---|---|---|")
    for name, b, _, _ in rows:
        if b:
            print(f"| {name} | {b} | {b / CLIP:.0f} | {CLIP * float16_frame / b:.0f}x | {CLIP * float32_frame / b:.0f}x |")
    print(f"\nTable 2 style: one 32-frame clip, edge = server = this CPU ({args.threads} threads); Eq. 1 "
          f"(edge + 8 * bytes / bandwidth + server), seconds; answer generation after the prefill not included")
    print("| configuration | edge s | server s | " + " | ".join(f"{b:g} Mbit/s" for b in BANDWIDTHS) + " |")
    print("|---|---|---|" + "---|" * len(BANDWIDTHS))
    for name, b, e, s in rows:
        totals = [(e + s) / 1000 + 8 * b / (bw * 1e6) for bw in BANDWIDTHS]
        print(f"| {name} | {e / 1000:.1f} | {s / 1000:.1f} | " + " | ".join(f"{x:.1f}" for x in totals) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
