"""h2c_evaluate: bitrate at equal detection accuracy for How2Compress and the baselines on the
project's evaluation clips (real footage not used for training), per clip and on average.
Prints a table, writes results JSON and a QP-map heat-map PNG (like the paper's Fig. 7).

    h2c_evaluate --model models/how2compress/ea-ssdlite-sensitivity-ft-d2 --out artifacts/h2c
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict

import numpy as np
import torch

from offload_common.cli import path_errors_in_one_line

#: name -> (file in data/footage, first frame, number of frames). vtest frames 0-399, bikes
#: frames 130-249 and Megamind frames 0-269 train the EA models; every clip here is held out
#: from them (carphone is never trained on). vtest-held-out is all 395 of vtest's held-out
#: frames (a longer clip, narrower bootstrap intervals).
CLIPS = {
    "vtest-400": ("vtest.avi", 400, 120),
    "carphone": ("carphone_pristine.mp4", 0, 120),
    "bikes": ("bikes.mp4", 0, 120),
    "vtest-held-out": ("vtest.avi", 400, 395),
}
#: validation clips: the last 20 % of each training segment, which h2c_train_sensitivity keeps
#: out of training to choose its epoch; for choosing a model's table and rules, never to report
VALIDATION_CLIPS = {
    "vtest-val": ("vtest.avi", 320, 80),
    "megamind-val": ("Megamind.avi", 216, 54),
    "bikes-val": ("bikes.mp4", 226, 24),
}
CLIPS.update(VALIDATION_CLIPS)
#: the project's evaluation clips (h2c_evaluate's default)
EVAL_CLIPS = ("vtest-400", "carphone", "bikes")


def check_clip_names(names) -> None:
    """Raise ValueError naming every one of ``names`` that is not in ``CLIPS``."""
    unknown = [n for n in names if n not in CLIPS]
    if unknown:
        raise ValueError(f"unknown clip(s) {', '.join(unknown)} (known: {', '.join(CLIPS)})")


def load_clip(footage: str, name: str, max_frames: int = 0):
    import av

    from how2compress_ros.evaluation import Clip

    check_clip_names([name])
    file, start, count = CLIPS[name]
    count = min(count, max_frames) if max_frames > 0 else count
    path = os.path.join(footage, file)
    with av.open(path) as c:
        fps = float(c.streams.video[0].average_rate or 30)
        frames = []
        for i, f in enumerate(c.decode(video=0)):
            if i >= start + count:
                break
            if i >= start:
                rgb = f.to_ndarray(format="rgb24")
                h, w = rgb.shape[:2]
                frames.append(np.ascontiguousarray(rgb[: h - h % 2, : w - w % 2]))
    return Clip(name, frames, fps)


def heatmap(path: str, rgb: np.ndarray, maps: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(maps) + 1, figsize=(4.2 * (len(maps) + 1), 3.4))
    axes[0].imshow(rgb)
    axes[0].set_title("frame")
    h, w = rgb.shape[:2]
    for ax, (title, qp) in zip(axes[1:], maps.items()):
        ax.imshow(rgb, alpha=0.55)
        im = ax.imshow(qp, cmap="magma_r", vmin=24, vmax=46, alpha=0.6, extent=(0, qp.shape[1] * 16, qp.shape[0] * 16, 0))
        ax.set_xlim(0, w)
        ax.set_ylim(h, 0)
        ax.set_title(title)
    for ax in axes:
        ax.axis("off")
    fig.colorbar(im, ax=axes[1:], shrink=0.8, label="QP")
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)


def _percent(v: float) -> str:
    return f"{v:+.1%}" if np.isfinite(v) else "n/r"      # n/r: the F1 bound not reached


def print_bootstrap(clip_runs: dict, bound: float, methods, samples: int, target: float = 0.25) -> None:
    """The fitted savings' spread over block-bootstrap resamples of each clip's frames."""
    from how2compress_ros.evaluation import H2C_METHODS, bootstrap_savings, interval

    if samples <= 0 or not methods:
        return
    print(f"\nFitted saving vs uniform QP, 95 % interval over {samples} block-bootstrap resamples of the frames "
          f"(blocks of 10; F1 re-counted, bitrates as measured):")
    boots = bootstrap_savings(clip_runs, bound, methods, samples=samples)
    for m, boot in boots.items():
        cells = []
        for name, values in boot.items():
            lo, hi = interval(values)
            cells.append(f"{name} {_percent(lo)}..{_percent(hi)}")
        reach = np.mean(np.nan_to_num(boot["mean"], nan=-np.inf) >= target)
        print(f"  {m:>12}: " + ", ".join(cells) + f"; mean >= {target:.0%} in {reach:.1%} of resamples"
              "  (n/r: F1 bound not reached)")
    if "x264-aq" in boots:
        # every method is read on the same resamples: the difference is paired
        aq = np.nan_to_num(boots["x264-aq"]["mean"], nan=-np.inf)
        for m in (m for m in H2C_METHODS if m in boots):
            with np.errstate(invalid="ignore"):
                diff = np.nan_to_num(boots[m]["mean"], nan=-np.inf) - aq   # NaN where neither reached the bound
            lo, hi = interval(diff)
            print(f"  {m} - x264-aq, mean saving (paired): {_percent(lo)}..{_percent(hi)}; "
                  f"{m} ahead in {np.mean(diff > 0):.1%} of resamples")


@path_errors_in_one_line("h2c_evaluate")
def main(argv=None) -> int:
    from how2compress_ros.codec import DEFAULT_LEVEL_QPS, levels_to_qp_map, mb_grid
    from how2compress_ros.detectors.factory import make_detector
    from how2compress_ros.emphasis.model import EmphasisModel
    from how2compress_ros.emphasis.proxy import roi_mask
    from how2compress_ros.emphasis.proxy import dilate_mask
    from how2compress_ros.evaluation import (H2C_METHODS, METHODS, chosen, cut_off_at_cheap_end, evaluate_clip,
                                             rate_at_bound)
    from how2compress_ros.pipeline import parse_level_table

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="EA model folder (config.json + model.safetensors)")
    ap.add_argument("--footage", default="data/footage")
    ap.add_argument("--clips", default=",".join(EVAL_CLIPS),
                    help=f"comma-separated clips of {', '.join(CLIPS)}")
    ap.add_argument("--f1-drop", type=float, default=0.02, help="allowed F1 drop vs raw-frame detection")
    ap.add_argument("--detector-threshold", type=float, default=0.4,
                    help="detector score threshold for reference and compressed frames")
    ap.add_argument("--detector-tiles", default="",
                    help="ROWSxCOLS: run the detector on overlapping tiles as well as the whole frame (e.g. 2x2)")
    ap.add_argument("--confident", type=float, default=0.6,
                    help="boxes scoring below this are don't-care in F1 (0 disables the band)")
    ap.add_argument("--level-qps", default=",".join(str(q) for q in DEFAULT_LEVEL_QPS),
                    help="QP of emphasis levels 0..4 (How2Compress searches this table shifted)")
    ap.add_argument("--neighbours", type=int, default=2,
                    help="also run this many settings either side of each method's crossing (for the "
                         "interpolated rate at the F1 bound)")
    ap.add_argument("--confirm", type=int, default=3,
                    help="run every setting around each method's cheapest pass, from this many fails in a row "
                         "below it to this many passes in a row above it (F1 is not monotone in QP on a short "
                         "clip; 0: the binary search's runs only)")
    ap.add_argument("--methods", default="x264-aq,accmpeg,how2compress",
                    help="methods to compare with uniform QP (the reference, always run); also "
                         "how2compress-aq: the emphasis maps on top of x264's variance AQ")
    ap.add_argument("--max-frames", type=int, default=0, help="evaluate only the first N frames of each clip")
    ap.add_argument("--bootstrap", type=int, default=1000,
                    help="block-bootstrap samples of the frames for the fitted savings' 95 %% intervals (0: none)")
    ap.add_argument("--shares", default="",
                    help="importance models: evaluate with these cumulative shares of levels 4..1 instead of "
                         "the model's (choose them on the validation clips)")
    ap.add_argument("--uniform-above", type=float, default=0.0,
                    help="evaluate with this 'do no harm' fraction instead of the model's (1 = off)")
    ap.add_argument("--out", default="artifacts/h2c")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    level_qps = parse_level_table(args.level_qps)
    methods = ["uniform"] + [m for m in args.methods.split(",") if m and m != "uniform"]
    unknown = set(methods) - set(METHODS)
    if unknown:
        print(f"h2c_evaluate: unknown method(s) {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    if args.confirm < 0 or args.neighbours < 0:
        print("h2c_evaluate: --confirm and --neighbours must be >= 0", file=sys.stderr)
        return 2
    clip_names = args.clips.split(",")
    try:
        check_clip_names(clip_names)
        detector = make_detector("ssdlite", score_threshold=args.detector_threshold, tiles=args.detector_tiles)
    except ValueError as exc:                  # refused before any model or footage is loaded
        print(f"h2c_evaluate: {exc}", file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    model = EmphasisModel.from_pretrained(args.model)
    try:
        if args.shares:
            from how2compress_ros.emphasis.model import parse_shares

            model.config.shares = parse_shares(args.shares)
        if args.uniform_above:
            model.config.uniform_above = args.uniform_above
        model.config.validate()
    except ValueError as exc:
        print(f"h2c_evaluate: {exc}", file=sys.stderr)
        return 2
    print(f"EA model {args.model}: {model.config.backbone}, output {model.config.output}"
          + (f", shares {tuple(model.config.shares)}" if model.config.output == "importance" else "")
          + f", uniform above {model.config.uniform_above}", flush=True)
    bound = 1 - args.f1_drop
    results, rows, all_runs = {}, [], {}
    for name in clip_names:
        clip = load_clip(args.footage, name, args.max_frames)
        print(f"== {name}: {len(clip.frames)} frames {clip.frames[0].shape[1]}x{clip.frames[0].shape[0]} @ {clip.fps:g} fps",
              flush=True)
        runs = evaluate_clip(clip, detector, model, f1_drop=args.f1_drop, confident=args.confident,
                             level_qps=level_qps, log=lambda s: print(s, flush=True), neighbours=args.neighbours,
                             confirm=args.confirm, methods=methods)
        all_runs[name] = runs
        rates = {m: rate_at_bound(rs, bound) for m, rs in runs.items()}
        cut = {m: cut_off_at_cheap_end(rs, bound) for m, rs in runs.items()}
        results[name] = {"runs": {m: [asdict(r) for r in rs] for m, rs in runs.items()},
                         "rate_at_bound_kbps": rates, "cut_off_at_cheap_end": cut}
        best = {m: chosen(rs) for m, rs in runs.items()}
        rows.append((name, best, rates, cut))
        if name == clip_names[0] and "how2compress" in best:
            mid = len(clip.frames) // 2
            rgb = clip.frames[mid]
            grid = mb_grid(rgb.shape[1], rgb.shape[0])
            shift = int(best["how2compress"].setting.replace("shift", ""))
            table = [min(q - shift, 51) for q in level_qps]
            heatmap(os.path.join(args.out, "qp_map.png"), rgb, {
                f"How2Compress (levels {'/'.join(str(q) for q in table)})": levels_to_qp_map(model.predict_levels(rgb), table),
                "AccMPEG-style 30/40": np.where(dilate_mask(roi_mask(detector.detect(rgb), grid)), 30, 40),
                f"uniform {best['uniform'].setting}": np.full(grid, int(best["uniform"].setting[2:])),
            })
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    print(f"\nCheapest setting per method with F1 >= {bound:.2f} vs raw-frame detection "
          f"(detector {detector.name}, threshold {args.detector_threshold}, don't-care below {args.confident}; "
          f"kbit/s; saving vs uniform QP):")
    print(f"{'clip':>10} | " + " | ".join(f"{m:>26}" for m in methods))
    savings = {m: [] for m in methods}
    for name, best, _, cut in rows:
        cells = []
        for m in methods:
            r = best[m]
            save = 1 - r.kbps / best["uniform"].kbps
            savings[m].append(save if r.meets_bound else float("nan"))
            cells.append(f"{r.kbps:7.1f} F1 {r.f1:.3f} {save:+6.1%}{'' if r.meets_bound else '!'}{'^' if cut[m] else ''}")
        print(f"{name:>10} | " + " | ".join(f"{c:>26}" for c in cells))
    print(f"{'mean':>10} | " + " | ".join(f"{np.nanmean(savings[m]):>+26.1%}" for m in methods))
    print("('!' = no setting met the F1 bound; the most accurate run is shown; '^' = the method already met it at "
          "the cheapest setting of its search (QP 51): its rate is an upper bound)")
    print(f"\nBitrate where F1 reaches {bound:.2f}: F1 fitted non-decreasing in bitrate over all of a "
          "method's runs (isotonic), crossing interpolated in log-bitrate (kbit/s; saving vs uniform QP):")
    print(f"{'clip':>10} | " + " | ".join(f"{m:>16}" for m in methods))
    fitted = {m: [] for m in methods}
    for name, _, rates, cut in rows:
        cells = []
        for m in methods:
            r, u = rates.get(m), rates.get("uniform")
            save = 1 - r / u if r and u else float("nan")
            fitted[m].append(save)
            cells.append(f"{r:7.1f} {save:+7.1%}{'^' if cut[m] else ''}" if r else "not reached")
        print(f"{name:>10} | " + " | ".join(f"{c:>16}" for c in cells))
    print(f"{'mean':>10} | " + " | ".join(f"{np.nanmean(fitted[m]):>+16.1%}" for m in methods))
    print_bootstrap(all_runs, bound, [m for m in methods if m != "uniform"], args.bootstrap)
    for name, best, _, _ in rows:
        for m in (m for m in H2C_METHODS if m in best):
            r = best[m]
            print(f"{name}: SSIM uniform {best['uniform'].ssim:.3f} / {m} {r.ssim:.3f}; "
                  f"encode {r.encode_ms:.2f} ms/frame; EA {r.ea_ms:.1f} ms/frame")
    print(f"wrote {args.out}/results.json and {args.out}/qp_map.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
