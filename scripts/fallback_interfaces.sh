#!/usr/bin/env bash
# Builds the interface packages under msg/fallback/ that the environment lacks (tf2_msgs is
# not published as a wheel) into the colcon install space beside guidewire_perception; a
# full ROS 2 install has them and builds nothing here. Called by scripts/env.sh.
#   scripts/fallback_interfaces.sh VENV
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=$1
cache=${GUIDEWIRE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/guidewire_perception}
exec 9>"$cache/.bootstrap.lock"  # the same lock as bootstrap.sh: one colcon build at a time
flock 9
cd "$root"
missing=()
for package in msg/fallback/*/; do
  name=$(basename "$package")
  provided=0
  for prefix in "$venv" ${AMENT_PREFIX_PATH:+${AMENT_PREFIX_PATH//:/ }}; do
    case "$prefix" in "$root/install"*) continue ;; esac  # our own fallback does not count
    [ -e "$prefix/share/ament_index/resource_index/packages/$name" ] && provided=1
  done
  [ "$provided" = 0 ] && missing+=("$name")
done
[ ${#missing[@]} -eq 0 ] && exit 0
stamp="$root/build/.fallback-hash"
sources=$({ find msg/fallback -type f -print0 | sort -z | xargs -0 sha256sum; echo "${missing[*]}"; } | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$sources" ] || [ ! -d "$root/install/${missing[0]}" ]; then
  echo "fallback interfaces: colcon build ${missing[*]}" >&2
  export VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH"
  AMENT_PREFIX_PATH="$venv" CMAKE_PREFIX_PATH="$venv" \
    colcon build --base-paths msg/fallback --packages-select "${missing[@]}" --event-handlers console_direct- >&2
  echo "$sources" > "$stamp"
fi
