#!/usr/bin/env bash
# colcon-build this package (messages + Python packages + node scripts) against the ROS 2
# wheels in .venv. In an apt ROS 2 workspace use plain `colcon build` instead.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck disable=SC1091
source .venv/bin/activate
export CMAKE_PREFIX_PATH="$VIRTUAL_ENV" AMENT_PREFIX_PATH="$VIRTUAL_ENV"
colcon --log-base build/colcon-log build --paths . --build-base build --install-base install \
  --event-handlers console_cohesion- console_stderr- \
  --cmake-args -DPython3_EXECUTABLE="$VIRTUAL_ENV/bin/python" -DBUILD_TESTING=OFF \
  || { echo "colcon build failed; full log: build/colcon-log/latest_build/edge_offload/stdout_stderr.log" >&2; exit 1; }
