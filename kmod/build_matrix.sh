#!/bin/bash
# kmod/build_matrix.sh - build falconet.ko against every kernel whose headers are installed
# (/usr/src/linux-headers-*, or the directories given as arguments) and fail on any compiler
# warning or error.
#
#   kmod/build_matrix.sh                      every /usr/src/linux-headers-* with a Makefile
#   kmod/build_matrix.sh /usr/src/linux-headers-6.12.117+deb12-rt-amd64 ...
#
# Each build runs in its own copy of kmod/ under a temporary directory (never in kmod/ itself,
# which other builds may be using).  Headers packages that are only the "-common" half (no
# Module.symvers, no .config) cannot build a module on their own and are skipped.
# Environment: FALCONET_MATRIX_WORK (scratch dir, default a fresh mktemp -d, removed at exit),
# FALCONET_MATRIX_JOBS (make -j, default the number of CPUs).
# Output: one line per kernel, "PASS <version>" or "FAIL <version> (<reason>)", and the build
# log of every failure.  Exit status: 0 all passed, 1 a build failed or warned, 2 nothing to
# build (no headers installed).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
JOBS=${FALCONET_MATRIX_JOBS:-$(nproc 2>/dev/null || echo 1)}

if [ $# -gt 0 ]; then
  dirs=("$@")
else
  dirs=()
  for d in /usr/src/linux-headers-*; do
    [ -f "$d/Makefile" ] && [ -f "$d/.config" ] && dirs+=("$d")
  done
fi
[ ${#dirs[@]} -gt 0 ] || { echo "build_matrix: no kernel headers in /usr/src/linux-headers-*" >&2; exit 2; }

if [ -n "${FALCONET_MATRIX_WORK:-}" ]; then
  WORK=$FALCONET_MATRIX_WORK
  mkdir -p "$WORK"
else
  WORK=$(mktemp -d /tmp/falconet-matrix.XXXXXX)
  trap 'rm -rf "$WORK"' EXIT
fi

fails=0
for kdir in "${dirs[@]}"; do
  kver=$(make -s -C "$kdir" kernelversion 2>/dev/null | tail -1)
  name=$(basename "$kdir"); name=${name#linux-headers-}
  src="$WORK/$name"
  rm -rf "$src"; mkdir -p "$src"
  # The sources only: a stale object or .cmd file copied from kmod/ would skip a rebuild.
  (cd "$HERE" && tar cf - --exclude='*.o' --exclude='*.ko' --exclude='*.mod' --exclude='*.mod.c' \
     --exclude='.*.cmd' --exclude='Module.symvers' --exclude='modules.order' --exclude='.tmp_versions' \
     --exclude='build_matrix.sh' .) | (cd "$src" && tar xf -)
  t0=$(date +%s)
  if ! make -C "$kdir" M="$src" -j"$JOBS" modules > "$src/build.log" 2>&1; then
    echo "FAIL $name ($kver): build failed, $(($(date +%s) - t0)) s"; sed 's/^/    /' "$src/build.log"
    fails=$((fails + 1)); continue
  fi
  if grep -qE "warning:|error:" "$src/build.log" || [ ! -f "$src/falconet.ko" ]; then
    echo "FAIL $name ($kver): warnings, $(($(date +%s) - t0)) s"; sed 's/^/    /' "$src/build.log"
    fails=$((fails + 1)); continue
  fi
  echo "PASS $name ($kver): zero warnings, $(($(date +%s) - t0)) s"
done
[ $fails = 0 ] || { echo "build_matrix: $fails of ${#dirs[@]} kernels failed" >&2; exit 1; }
echo "build_matrix: ${#dirs[@]} kernels, all built with zero warnings"
