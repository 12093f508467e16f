"""h2c_profile: profile How2Compress settings (EA map at several base QPs, uniform QPs) and
edge-only detection on a clip into the lookup table of the "det" stream, for the link monitor.

    h2c_profile --model models/how2compress/ea-ssdlite-sensitivity-ft-d2 \\
        --out models/how2compress/ea-ssdlite-sensitivity-ft-d2/lut_cpu.json
"""
from __future__ import annotations

import argparse
import sys
import time

from offload_common.cli import path_errors_in_one_line


@path_errors_in_one_line("h2c_profile")
def main(argv=None) -> int:
    import torch

    from how2compress_ros.codec import DEFAULT_LEVEL_QPS
    from how2compress_ros.detectors.ssdlite_person import SSDLitePersonDetector
    from how2compress_ros.emphasis.model import EmphasisModel
    from how2compress_ros.evaluate_cli import CLIPS, load_clip
    from how2compress_ros.pipeline import EdgeSettings, parse_level_table
    from how2compress_ros.profiling import profile_settings

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="EA model folder")
    ap.add_argument("--out", required=True, help="lookup table to write (JSON)")
    ap.add_argument("--footage", default="data/footage")
    ap.add_argument("--clip", default="vtest-400", choices=sorted(CLIPS))
    ap.add_argument("--frames", type=int, default=90, help="frames of the clip to profile")
    ap.add_argument("--h2c-base-qps", default="45,41,37,34", help="h2c/base<QP> settings to profile")
    ap.add_argument("--uniform-qps", default="40,34,28", help="uniform/qp<QP> settings to profile")
    ap.add_argument("--level-qps", default=",".join(str(q) for q in DEFAULT_LEVEL_QPS),
                    help="QP of emphasis levels 0..4 (edge level_qps)")
    ap.add_argument("--map-reuse", type=int, default=1, help="EA map computed every N frames (edge parameter)")
    ap.add_argument("--detector-threshold", type=float, default=0.4)
    ap.add_argument("--confident", type=float, default=0.6, help="boxes below this score are don't-care in F1")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (the nodes use 1)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    clip = load_clip(args.footage, args.clip)
    frames = clip.frames[:args.frames]
    detector = SSDLitePersonDetector(score_threshold=args.detector_threshold)
    model = EmphasisModel.from_pretrained(args.model)
    ids = ([f"h2c/base{q.strip()}" for q in args.h2c_base_qps.split(",") if q.strip()]
           + [f"uniform/qp{q.strip()}" for q in args.uniform_qps.split(",") if q.strip()] + ["edge_only"])
    t0 = time.time()
    print(f"{args.clip}: {len(frames)} frames {frames[0].shape[1]}x{frames[0].shape[0]}")
    print(f"{'config':16s} {'F1':>6s} {'bytes':>8s} {'max':>8s} {'EA':>7s} {'enc':>6s} {'dec':>6s} {'detect':>7s}"
          "  (ms per frame)", flush=True)

    def show(e):
        print(f"{e.config_id:16s} {e.accuracy:6.3f} {e.bytes:8.0f} {e.extra.get('max_bytes', 0):8.0f} "
              f"{e.edge_ms:7.2f} {e.encode_ms:6.2f} {e.decode_ms:6.2f} {e.server_ms or e.edge_ms:7.2f}", flush=True)

    lut = profile_settings(ids, frames, detector, model, EdgeSettings(fps=clip.fps, map_reuse=args.map_reuse),
                           args.confident, on_entry=show, level_qps=parse_level_table(args.level_qps))
    lut.meta.update({"clip": args.clip, "level_qps": args.level_qps, "fps": clip.fps, "map_reuse": args.map_reuse, "device": "cpu",
                     "command": "h2c_profile " + " ".join(sys.argv[1:] if argv is None else argv),
                     "seconds": round(time.time() - t0)})
    lut.save(args.out)
    print(f"wrote {args.out} ({len(lut.entries)} entries, {lut.meta['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
