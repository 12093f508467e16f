#!/usr/bin/env bash
# Run a command in the project's ROS 2 environment: the .venv made by `make setup`, the
# colcon install of our messages, and this source tree first on PYTHONPATH (so edits to the
# Python packages need no rebuild). DDS discovery stays on this machine
# (ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST) unless EDGE_OFFLOAD_DISCOVERY_RANGE says otherwise,
# which only the network-namespace tooling does.
#   usage: tools/ros_env.sh <command> [args...]
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ ! -x "$ROOT/.venv/bin/python" ] || [ ! -f "$ROOT/install/setup.sh" ]; then
  echo "tools/ros_env.sh: run 'make setup' first (no .venv or install/)" >&2
  exit 2
fi
# shellcheck disable=SC1091
source "$ROOT/.venv/bin/activate"
export AMENT_PREFIX_PATH="${VIRTUAL_ENV}${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
# colcon's setup.sh reads COLCON_CURRENT_PREFIX; keep its output quiet.
COLCON_CURRENT_PREFIX="$ROOT/install" . "$ROOT/install/setup.sh"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export ROS_AUTOMATIC_DISCOVERY_RANGE="${EDGE_OFFLOAD_DISCOVERY_RANGE:-LOCALHOST}"
if [ -z "${EDGE_OFFLOAD_DISCOVERY_RANGE:-}" ]; then
  # Fast DDS 3.x (Kilted and newer) reads the first variable, Fast DDS 2.x (Humble, Jazzy) the second
  export FASTDDS_DEFAULT_PROFILES_FILE="${FASTDDS_DEFAULT_PROFILES_FILE:-$ROOT/config/fastdds_localhost.xml}"
  export FASTRTPS_DEFAULT_PROFILES_FILE="${FASTRTPS_DEFAULT_PROFILES_FILE:-$FASTDDS_DEFAULT_PROFILES_FILE}"
fi
export RCUTILS_COLORIZED_OUTPUT="${RCUTILS_COLORIZED_OUTPUT:-0}"
export PYTHONUNBUFFERED=1
exec "$@"
