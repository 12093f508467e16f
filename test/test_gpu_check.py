"""tools/gpu_check.py, the script a GPU machine runs, works end to end on its CPU rows here:
every model (EA, SSDLite, ApproxBit edge and server halves of both backbones, VQA head) on torch
and on ONNX Runtime's CPU provider agrees with the committed reference outputs
(tools/gpu_check/inputs.npz; a changed model makes them stale and this test says so: rerun
``tools/gpu_check.py prepare``). Without CUDA and without GPU_CHECK_ALLOW_CPU it refuses."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_gpu_check_cpu_rows_agree_with_the_committed_references(tmp_path):
    env = {**os.environ, "GPU_CHECK_ALLOW_CPU": "1"}
    out = tmp_path / "table.md"
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "gpu_check.py"), "run", "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = [line for line in out.read_text().splitlines() if line.startswith("| ") and "---" not in line][1:]
    backends = {r.split(" | ")[1] for r in rows}
    assert backends >= {"torch cpu", "onnxruntime CPUExecutionProvider"}
    assert len(rows) == 8 * len(backends)                     # 8 model rows per backend
    assert all("FAILED" not in r and "DIFFERENT" not in r for r in rows)
    assert sum("14/14 identical top-5" in r for r in rows) == 2 * len(backends)
    assert sum("1.00000 of bits" in r for r in rows) == 2 * len(backends)


def test_gpu_check_without_cuda_says_so():
    env = {k: v for k, v in os.environ.items() if k != "GPU_CHECK_ALLOW_CPU"}
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "gpu_check.py"), "run"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2 and "sees no CUDA device" in proc.stdout
