#!/usr/bin/env bash
# Runs a command inside the project's environment: bootstrap (idempotent),
# then the venv and the colcon install space sourced.
#   scripts/env.sh python -m guidewire_ros.run_pipeline
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=$("$root/scripts/bootstrap.sh" | tail -n 1)
"$root/scripts/fallback_interfaces.sh" "$venv"  # tf2_msgs where no wheel provides it
export VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH"
set +u
# shellcheck disable=SC1091
. "$root/install/setup.bash"
set -u
# Keep DDS discovery on this host unless the user chose otherwise: for commands such as the ros2
# CLI; Python entry points set it themselves (guidewire_ros.pipeline_config.localhost_discovery_default).
export ROS_AUTOMATIC_DISCOVERY_RANGE=${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}
export PYTHONPATH="$root/src:$PYTHONPATH"
cd "$root"
exec "$@"
