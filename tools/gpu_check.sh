#!/usr/bin/env bash
# GPU check of every model (tools/gpu_check.py run): PyTorch on device cuda, and ONNX Runtime's
# TensorRT / CUDA providers where onnxruntime-gpu is installed, each against the CPU reference
# outputs in tools/gpu_check/inputs.npz (made here with `tools/gpu_check.py prepare`), with a
# timing table (CUDA events). For a machine with an NVIDIA GPU, PyTorch with CUDA and
# ONNX Runtime, and no ROS or network: run it from the repository root,
#   tools/gpu_check.sh [OUT_DIR]          # table in OUT_DIR/gpu_check.md (default build/gpu_check)
# It stops itself after GPU_CHECK_TIMEOUT_S (default 480) seconds. Pure-Python dependencies the
# machine lacks are installed from tools/gpu_check/wheels (fill it here, with network, by
#   tools/gpu_check.sh --fetch-wheels); binary ones (safetensors, tokenizers, regex, pyyaml for
# transformers) must be there already, or the rows that need them say they failed.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
WHEELS="$ROOT/tools/gpu_check/wheels"
PURE_PYTHON="transformers huggingface-hub filelock packaging tqdm requests fsspec typing-extensions"

if [ "${1:-}" = "--fetch-wheels" ]; then
  mkdir -p "$WHEELS"
  "$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.10 --platform any -d "$WHEELS" $PURE_PYTHON
  exit $?
fi

OUT_DIR="${1:-${OUT:-$ROOT/build/gpu_check}}"
mkdir -p "$OUT_DIR"
cd "$ROOT" || exit 2
missing=$("$PY" - <<'PYEOF'
import importlib.util as u
modules = {"transformers": "transformers", "huggingface_hub": "huggingface-hub", "filelock": "filelock",
           "packaging": "packaging", "tqdm": "tqdm", "requests": "requests", "fsspec": "fsspec"}
print(" ".join(pkg for mod, pkg in modules.items() if u.find_spec(mod) is None))
PYEOF
)
if [ -n "$missing" ]; then
  echo "gpu_check: installing $missing from $WHEELS" >&2
  "$PY" -m pip install -q --no-index --find-links "$WHEELS" --target "$OUT_DIR/pydeps" $missing \
    || echo "gpu_check: could not install $missing (rows needing them will fail)" >&2
  export PYTHONPATH="$OUT_DIR/pydeps${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" >&2
timeout "${GPU_CHECK_TIMEOUT_S:-480}" "$PY" tools/gpu_check.py run --out "$OUT_DIR/gpu_check.md" \
  2> >(tee "$OUT_DIR/gpu_check.log" >&2)
rc=$?
[ $rc -eq 124 ] && echo "gpu_check: stopped after ${GPU_CHECK_TIMEOUT_S:-480} s" >&2
exit $rc
