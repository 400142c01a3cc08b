#!/bin/bash
# benchmarks/bench_kmod.sh - falconet.ko vs Falco's scap.ko, in one qemu (TCG) boot of Debian's
# kernel: syscall loops (getpid; open/close; mixed open/read/close/stat/getpid) with no module,
# with falconet.ko + the C ring reader draining and decoding the records (tests/vm/bench_reader.py:
# ext/ring.c + collector.native's decoder, what `falconet run` does before the rules), and with
# scap.ko + `sysdig -w /dev/null`.  The configurations are interleaved in each repetition.
# Prints the markdown tables recorded in RESULTS.md.
#
#   benchmarks/bench_kmod.sh            (REPS=5 by default; REPS=3 benchmarks/bench_kmod.sh)
#
# The guest boots with tsc=reliable (FALCONET_VM_APPEND; set it to "" for the kernel's own
# choice): under TCG the kernel otherwise falls back to the emulated HPET, whose every read
# costs 1-2 us and dominates both drivers' per-event cost, unlike real x86 hosts (TSC).
# Reader settings go on the same kernel command line (see tests/vm/guest_bench.sh), e.g.
#   FALCONET_VM_APPEND="tsc=reliable fnbench.wm=262144 fnbench.decode=0" benchmarks/bench_kmod.sh
#
# Every guest step is bounded by a timeout (sysdig has stalled in some boots); if the whole
# boot is cut by FALCONET_VM_TIMEOUT, the tables are still made from the runs that finished,
# and the runs that are missing are listed under them.
#
# Installs falcosecurity-scap-dkms and sysdig if missing (DKMS builds scap.ko for the
# Debian kernel the VM boots).  Takes 3-15 minutes on a 2-core host.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export FALCONET_VM_WORK=${FALCONET_VM_WORK:-/tmp/falconet-vm-bench}
export FALCONET_VM_TIMEOUT=${FALCONET_VM_TIMEOUT:-1800}
export FALCONET_VM_APPEND=${FALCONET_VM_APPEND-tsc=reliable}
REPO=$(cd "$HERE/.." && pwd)
echo "bench_kmod: $(date -u +%FT%TZ) commit $(git -C "$REPO" rev-parse --short HEAD) load $(cut -d' ' -f1-3 /proc/loadavg) append '$FALCONET_VM_APPEND' REPS=${REPS:-5}" >&2
# what is measured is the working tree (kmod/ is built from it, collector/_native from ext/)
dirty=$(git -C "$REPO" status --porcelain -- kmod ext collector tests/vm | awk '{print $2}' | tr '\n' ' ')
[ -n "$dirty" ] && echo "bench_kmod: uncommitted in the measured tree: $dirty" >&2
echo "bench_kmod: sha256 kmod+ext sources $(cat "$REPO"/kmod/*.[ch] "$REPO"/kmod/include/*.h "$REPO"/ext/*.[ch] | sha256sum | cut -c1-12), collector/_native $(sha256sum < "$REPO"/collector/_native.abi3.so | cut -c1-12)" >&2
rc=0
# bash reads a script as it runs it: run a snapshot of run_vm.sh held in memory, so an edit of
# the file during the 3-15 minutes of the run cannot make it re-run or skip steps
RUNVM="$REPO/tests/vm/run_vm.sh"
bash -c "$(cat "$RUNVM")" "$RUNVM" bench || rc=$?
OUT=$FALCONET_VM_WORK/out
if [ ! -s "$OUT/bench.md" ] && [ -s "$OUT/bench.txt" ]; then
  python3 "$HERE/../tests/vm/check_bench.py" "$OUT" > /dev/null || true   # partial run
fi
echo "bench_kmod: $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
cat "$OUT/bench.md" 2>/dev/null || true
exit $rc
