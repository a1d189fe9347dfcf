#!/usr/bin/env bash
# Build the `.whl/` bundle that bench/gpu_check.py installs on the offline GPU
# machine (x86-64, Python 3.12, NVIDIA driver 580, no pycuda, no gast), and
# print the `run` call that carries it there.
#
# What goes into .whl/ (git ignores /.whl/; never commit it):
#   pycuda-*-cp312-*.whl      built here by ../shared/gpu/build_pycuda_wheel.sh
#                             (curand off, linked against a libcuda stub)
#   deps/*.whl                pycuda's pure-Python dependencies (pytools, mako, ...)
#   gast, astunparse (+six)   cotan's parser dependency, as cp312 wheels
#   pycuda_smoke.py           the recipe's driver-level smoke test
# cotan itself is not a wheel: the run tool carries the working tree.
#
# Usage:  bash bench/gpu_bundle.sh            build (3-6 min on 2 cores; needs PyPI)
#         bash bench/gpu_bundle.sh --dry-run  say what would be done, build nothing
# Environment: WHL (default <repo>/.whl), BUILD_SCRIPT (the pycuda recipe),
#              B (the recipe's work dir, default a fresh temporary folder),
#              GAST_VERSION (default: the version installed here, else 0.7.0)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
WHL=${WHL:-$ROOT/.whl}
BUILD_SCRIPT=${BUILD_SCRIPT:-/work/shared/gpu/build_pycuda_wheel.sh}
GAST_VERSION=${GAST_VERSION:-$(python3 -c 'import importlib.metadata as m; print(m.version("gast"))' 2>/dev/null || echo 0.7.0)}
DRY=0
[ "${1:-}" = "--dry-run" ] && DRY=1
# the bundle travels inside the 64 MiB working-tree limit with the tree itself
LIMIT_BYTES=$((48 * 1024 * 1024))

# pip download for the GPU machine's interpreter, not this one's (3.11 here)
PIPDL=(python3 -m pip download --only-binary=:all: --python-version 3.12 --implementation cp
       --abi cp312 --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64
       --platform manylinux_2_28_x86_64)

run_command() {
  cat <<EOF
run(command="python3 bench/gpu_check.py --deadline 480", carry=[".whl"], timeout_s=540)
EOF
}

if [ $DRY = 1 ]; then
  echo "dry run: nothing is built"
  echo "bundle folder: $WHL"
  echo "pycuda recipe: $BUILD_SCRIPT $( [ -f "$BUILD_SCRIPT" ] && echo '(present)' || echo '(MISSING)')"
  echo "step 1: B=<tmp> bash $BUILD_SCRIPT  -> pycuda cp312 wheel + deps312/*.whl"
  echo "step 2: ${PIPDL[*]} --no-deps -d $WHL gast==$GAST_VERSION astunparse six"
  echo "step 3: check that $WHL stays under $LIMIT_BYTES bytes"
  echo "then, with the device tool:"
  run_command
  exit 0
fi

[ -f "$BUILD_SCRIPT" ] || { echo "gpu_bundle: the pycuda recipe $BUILD_SCRIPT is missing" >&2; exit 2; }
git -C "$ROOT" check-ignore -q "$WHL/x.whl" 2>/dev/null \
  || { echo "gpu_bundle: $WHL is not ignored by git; add /.whl/ to .gitignore first" >&2; exit 2; }

B=${B:-$(mktemp -d)}
export B
echo "== building pycuda in $B"
bash "$BUILD_SCRIPT"

rm -rf "$WHL"; mkdir -p "$WHL/deps"
cp "$B"/wheelhouse/pycuda-*-cp312-*.whl "$WHL/"
cp "$B"/deps312/*.whl "$WHL/deps/"
# the recipe's smoke test: gpu_check.py runs it first, so a broken pycuda is told apart from cotan
cp "$(dirname "$BUILD_SCRIPT")/pycuda_smoke.py" "$WHL/" 2>/dev/null || true
"${PIPDL[@]}" --no-deps -d "$WHL" "gast==$GAST_VERSION" astunparse six

size=$(du -sb "$WHL" | cut -f1)
echo "== bundle $WHL: $size bytes"
(cd "$WHL" && find . -type f | sort)
if [ "$size" -gt "$LIMIT_BYTES" ]; then
  echo "gpu_bundle: the bundle is over $LIMIT_BYTES bytes; the device tool carries 64 MiB with the tree" >&2
  exit 1
fi
echo "== run it with the device tool:"
run_command
