#!/usr/bin/env bash
# Render an offload_report page in headless Chromium (Debian package `chromium`) and save a
# full-page PNG, to check by eye that every figure shows.
#   usage: tools/screenshot_report.sh RUN/report.html [out.png] [height_px]
#   (apt-get install chromium   where it is missing)
set -euo pipefail
html="${1:?usage: tools/screenshot_report.sh REPORT.html [out.png] [height_px]}"
out="${2:-${html%.html}.png}"
height="${3:-6000}"
browser="$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)"
if [ -z "$browser" ]; then
  echo "screenshot_report: no chromium on PATH (Debian: apt-get install chromium)" >&2
  exit 2
fi
# --no-sandbox: CI containers run as root, where Chromium's sandbox refuses to start
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1350,"$height" \
  --screenshot="$(realpath -m "$out")" "file://$(realpath "$html")" 2>/dev/null
echo "wrote $out"
