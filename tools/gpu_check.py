#!/usr/bin/env python3
"""GPU check of every model, for a machine with an NVIDIA GPU, PyTorch with CUDA and ONNX Runtime
but no ROS and no network (tools/gpu_check.sh runs it there).

  python tools/gpu_check.py prepare        # here: real inputs and the CPU reference outputs -> inputs.npz
  python tools/gpu_check.py run [--out F]  # there: every model on device cuda (PyTorch) and on each
                                           # ONNX Runtime provider it has, against the references

``prepare`` decodes the inputs on this machine (a 640x360 footage frame, the SSDLite input of a
768x576 one, one synthetic action clip per backbone) so the GPU machine needs neither OpenCV nor
PyAV, and stores what the CPU computes from them: EA levels, SSDLite boxes, every ApproxBit
configuration's top-5 from the server half, the VQA head's answers. ``run`` prints a markdown
table: model, backend, agreement with the reference, median ms (CUDA events for torch on cuda,
wall clock around synchronous ONNX Runtime calls). Nothing here claims a number it did not
measure: a backend that is missing or fails is a row saying so.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import traceback

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
INPUTS = os.path.join(ROOT, "tools", "gpu_check", "inputs.npz")
EA = os.path.join(ROOT, "models", "how2compress", "ea-mobilevitv2-050-d2-vtest-bikes")
BACKBONES = ("cnn3d-actions", "videomae-actions")
QUESTION = "which way does the object move?"


def backbone_folder(name):
    return os.path.join(ROOT, "models", "approxbit", name)


def boxes_array(boxes) -> np.ndarray:
    return np.array([[b.x_min, b.y_min, b.x_max, b.y_max, b.score] for b in boxes], np.float32).reshape(-1, 5)


# ------------------------------------------------------------------------------------------ prepare
def prepare(out: str) -> None:
    import cv2
    import torch

    from approxbit_ros.configurations import ConfigurationSet
    from approxbit_ros.data.synthetic_actions import SyntheticActions
    from approxbit_ros.pipeline import ApproxBitEdge, ApproxBitServer, ClipBuffer
    from approxbit_ros.vqa.model import VqaHead, vqa_folder
    from how2compress_ros.detectors.ssdlite_person import SSDLitePersonDetector
    from how2compress_ros.emphasis.model import EmphasisModel

    torch.set_num_threads(2)
    cap = cv2.VideoCapture(os.path.join(ROOT, "data", "footage", "vtest.avi"))
    for _ in range(40):
        ok, bgr = cap.read()
    rgb = np.ascontiguousarray(bgr[:, :, ::-1])
    data = {"ea_frame": cv2.resize(rgb, (640, 360)), "det_frame_hw": np.array(rgb.shape[:2])}
    data["ea_levels"] = EmphasisModel.from_pretrained(EA).predict_levels(data["ea_frame"])
    det = SSDLitePersonDetector()
    data["det_input"] = det.preprocess(rgb).numpy()
    data["det_boxes"] = boxes_array(det.detect(rgb))
    for name in BACKBONES:
        configs = ConfigurationSet.from_pretrained(backbone_folder(name))
        clip = np.stack([ClipBuffer(16, 16, 64).prepare(f) for f in SyntheticActions("test", 2)[1][0]])
        data[f"{name}/clip"] = clip
        server = ApproxBitServer(configs)
        for i, cid in enumerate(c for c in configs.ids if c != "edge_only"):
            out_ = ApproxBitEdge(configs, cid).process(clip)
            fields = out_.wire_fields(configs.name)
            data[f"{name}/{cid}/codes"] = server.admit("s", i, **fields).codes.cpu().numpy()
            data[f"{name}/{cid}/top5"] = np.array(server.serve(server.admit("t", i, **fields)).prediction.topk_ids)
        head = VqaHead.from_pretrained(vqa_folder(backbone_folder(name)))
        fmap = ApproxBitEdge(configs, "edge_only").process(clip).final_map
        data[f"{name}/final_map"] = fmap.numpy()
        data[f"{name}/vqa_answer"] = np.array(head.answer(fmap, QUESTION).answer)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    np.savez_compressed(out, **data)
    print(f"wrote {out} ({os.path.getsize(out) / 1e6:.1f} MB, {len(data)} arrays)")


# ------------------------------------------------------------------------------------------ run
class Timer:
    """Median ms of ``fn``: CUDA events around it for torch on cuda, else the wall clock."""

    def __init__(self, cuda: bool):
        self.cuda = cuda

    def __call__(self, fn, runs: int = 20, warmup: int = 3) -> float:
        import torch

        for _ in range(warmup):
            fn()
        times = []
        for _ in range(runs):
            if self.cuda:
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                fn()
                end.record()
                torch.cuda.synchronize()
                times.append(start.elapsed_time(end))
            else:
                t = time.perf_counter()
                fn()
                times.append(1000 * (time.perf_counter() - t))
        return float(np.median(times))


def backends():
    """(label, torch device or None, ONNX providers or None) for every backend this machine has;
    TensorRT last, since it builds an engine per graph (minutes in all)."""
    import torch

    out = [("torch cpu", "cpu", None)]
    if torch.cuda.is_available():
        out.append((f"torch cuda ({torch.cuda.get_device_name(0)})", "cuda", None))
    try:
        import onnxruntime as ort

        have = ort.get_available_providers()
        if "CUDAExecutionProvider" in have:
            out.append(("onnxruntime CUDAExecutionProvider", None, ("CUDAExecutionProvider", "CPUExecutionProvider")))
        out.append(("onnxruntime CPUExecutionProvider", None, ("CPUExecutionProvider",)))
        if "TensorrtExecutionProvider" in have:
            out.append(("onnxruntime TensorrtExecutionProvider", None,
                        ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")))
    except ImportError:
        pass
    return out


def check_ea(d, device, providers, timer):
    import torch

    from how2compress_ros.emphasis.model import EmphasisModel
    from how2compress_ros.emphasis.onnx_model import OnnxEmphasisModel
    from offload_common.onnx_runtime import OnnxSettings

    model = EmphasisModel.from_pretrained(EA)
    if providers:
        model = OnnxEmphasisModel(model, OnnxSettings(providers, 2))
    else:
        model = model.to(device)
    frame = d["ea_frame"]
    levels = model.predict_levels(frame)
    agree = float((levels == d["ea_levels"]).mean())
    return (f"{'' if agree >= 0.999 else 'DIFFERENT: '}{agree:.4f} of macroblocks",
            timer(lambda: model.predict_levels(frame)))


def check_ssdlite(d, device, providers, timer):
    import torch

    from how2compress_ros.detectors.ssdlite_person import SSDLitePersonDetector
    from offload_common.onnx_runtime import OnnxSettings

    if device == "cuda":
        return "n/a: the TF graph runner runs on the CPU; the GPU route is ONNX Runtime", None
    det = SSDLitePersonDetector(onnx=OnnxSettings(providers, 2) if providers else None)
    x = torch.from_numpy(d["det_input"])
    det.preprocess = lambda rgb: x                   # the input prepared on the reference machine
    h, w = (int(v) for v in d["det_frame_hw"])
    blank = np.zeros((h, w, 3), np.uint8)
    got = boxes_array(det.detect(blank))
    ref = d["det_boxes"]
    if got.shape != ref.shape:
        return f"DIFFERENT: {len(got)} boxes, reference {len(ref)}", timer(lambda: det.detect(blank))
    err = float(np.abs(got - ref).max()) if len(ref) else 0.0
    return f"{'' if err < 0.05 else 'DIFFERENT: '}{len(ref)} boxes, max abs diff {err:.2g} (px, score)", timer(lambda: det.detect(blank))


def check_approxbit(d, name, device, providers, timer):
    import torch

    from approxbit_ros.configurations import ConfigurationSet
    from approxbit_ros.onnx_edge import OnnxEdgeRuntime
    from approxbit_ros.onnx_server import OnnxServerRuntime
    from approxbit_ros.pipeline import AdmittedPayload, ApproxBitEdge, ApproxBitServer
    from approxbit_ros.vqa.model import VqaHead, vqa_folder
    from approxbit_ros.vqa.onnx_head import OnnxVqaHead
    from offload_common.onnx_runtime import OnnxSettings

    configs = ConfigurationSet.from_pretrained(backbone_folder(name))
    settings = OnnxSettings(providers, 2) if providers else None
    if settings is None:
        configs = configs.to(device)
    server = ApproxBitServer(configs, runtime=OnnxServerRuntime(configs, settings) if settings else None)
    edge_runtime = OnnxEdgeRuntime(configs, settings=settings) if settings else None
    clip = d[f"{name}/clip"]
    bits_same = bits_total = 0
    float_err, edge_times = 0.0, []
    for i, cid in enumerate(c for c in configs.ids if c != "edge_only"):
        edge = ApproxBitEdge(configs, cid, runtime=edge_runtime)
        codes = server.admit("edge", i, **edge.process(clip).wire_fields(configs.name)).codes.cpu().numpy()
        ref = d[f"{name}/{cid}/codes"]
        if configs.get(cid).kind == "binary":
            bits_same, bits_total = bits_same + int((codes == ref).sum()), bits_total + ref.size
        else:
            float_err = max(float_err, float(np.abs(codes - ref).max() / (np.abs(ref).max() + 1e-12)))
        edge_times.append(timer(lambda: edge.process(clip), runs=10))
    ok = bits_same / bits_total >= 0.9999 and float_err < 1e-3
    rows = [(f"ApproxBit {name} edge halves (clip -> codes)",
             f"{'' if ok else 'DIFFERENT: '}{bits_same / bits_total:.5f} of bits; float codes max rel. diff "
             f"{float_err:.1g}",
             float(np.median(edge_times)))]
    same, total, times = 0, 0, []
    for cid in (c for c in configs.ids if c != "edge_only"):
        codes = torch.from_numpy(d[f"{name}/{cid}/codes"]).to(configs.device)
        shape = server.wire_shapes[cid].feature_shape
        p = AdmittedPayload("s", 0, configs.get(cid), codes, shape, 0.0)
        top5 = server.serve(p).prediction.topk_ids
        same += int(list(top5) == list(d[f"{name}/{cid}/top5"]))
        total += 1
        times.append(timer(lambda: server.serve(p), runs=10))
    head = VqaHead.from_pretrained(vqa_folder(backbone_folder(name)))
    head = OnnxVqaHead(head, settings) if settings else head.to(configs.device)
    fmap = torch.from_numpy(d[f"{name}/final_map"]).to(configs.device)
    answer = head.answer(fmap, QUESTION).answer
    vqa_ms = timer(lambda: head.answer(fmap, QUESTION))
    return rows + [(f"ApproxBit {name} server halves ({total} configurations)",
             f"{'' if same == total else 'DIFFERENT: '}{same}/{total} identical top-5", float(np.median(times))),
            (f"VQA head ({name})", "same answer" if answer == str(d[f"{name}/vqa_answer"]) else
             f"DIFFERENT answer {answer!r}", vqa_ms)]


def run(inputs: str, out: str, allow_cpu: bool) -> int:
    import torch

    if not torch.cuda.is_available() and not allow_cpu:
        print("gpu_check: PyTorch sees no CUDA device; nothing to check (GPU_CHECK_ALLOW_CPU=1 runs the CPU rows)")
        return 2
    d = dict(np.load(inputs, allow_pickle=False))
    rows = []
    for label, device, providers in backends():
        timer = Timer(device == "cuda")
        for model, fn in (("EA model, 640x360 frame", lambda: check_ea(d, device, providers, timer)),
                          ("SSDLite person detector (graph + decoding + NMS)",
                           lambda: check_ssdlite(d, device, providers, timer))):
            try:
                agree, ms = fn()
                rows.append((model, label, agree, ms))
            except Exception as exc:
                rows.append((model, label, f"FAILED: {type(exc).__name__}: {' '.join(str(exc).split())[:160]}", None))
                traceback.print_exc()
        if providers and providers[0] == "TensorrtExecutionProvider":
            rows.append(("ApproxBit server / edge halves, VQA head", label,
                         "not run: an engine per configuration (56 graphs) does not fit the 8-minute budget", None))
            print(f"done: {label}", flush=True)
            continue
        for name in BACKBONES:
            try:
                for model, agree, ms in check_approxbit(d, name, device, providers, timer):
                    rows.append((model, label, agree, ms))
            except Exception as exc:
                rows.append((f"ApproxBit {name}", label, f"FAILED: {type(exc).__name__}: "
                             f"{' '.join(str(exc).split())[:160]}", None))
                traceback.print_exc()
        print(f"done: {label}", flush=True)
    lines = [f"gpu_check: torch {torch.__version__}, CUDA {torch.version.cuda}, "
             f"{torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU'}",
             "| model | backend | agreement with the CPU reference | median ms |", "|---|---|---|---|"]
    lines += [f"| {m} | {b} | {a} | {'-' if ms is None else f'{ms:.2f}'} |" for m, b, a, ms in rows]
    text = "\n".join(lines)
    print(text)
    if out:
        with open(out, "w") as f:
            f.write(text + "\n")
    return 0 if not any("FAILED" in r[2] or "DIFFERENT" in r[2] for r in rows) else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--out", default=INPUTS)
    r = sub.add_parser("run")
    r.add_argument("--inputs", default=INPUTS)
    r.add_argument("--out", default="")
    args = ap.parse_args()
    if args.cmd == "prepare":
        prepare(args.out)
        return 0
    return run(args.inputs, args.out, os.environ.get("GPU_CHECK_ALLOW_CPU") == "1")


if __name__ == "__main__":
    sys.exit(main())
