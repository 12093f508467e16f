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
  # Fast DDS 3.x (Kilted's wheels) reads FASTDDS_DEFAULT_PROFILES_FILE and warns at every node
  # start if FASTRTPS_DEFAULT_PROFILES_FILE is set; Fast DDS 2.x (Jazzy's wheels) reads only the
  # latter (offload_common.process_graph.dds_profile_variable decides the same way)
  if [ -e "$ROOT/.venv/lib/libfastrtps.so" ]; then PROFILE_VAR=FASTRTPS_DEFAULT_PROFILES_FILE
  else PROFILE_VAR=FASTDDS_DEFAULT_PROFILES_FILE; fi
  export "$PROFILE_VAR"="${!PROFILE_VAR:-$ROOT/config/fastdds_localhost.xml}"
fi
export RCUTILS_COLORIZED_OUTPUT="${RCUTILS_COLORIZED_OUTPUT:-0}"
export PYTHONUNBUFFERED=1
exec "$@"
