#!/bin/bash
# benchmarks/bench_kmod.sh - falconet.ko vs Falco's scap.ko, in one qemu (TCG) boot of Debian's
# kernel: syscall loops (getpid; open/close; mixed open/read/close/stat/getpid) with no module,
# with falconet.ko + a live reader draining the rings (collector.sources.live, raw per-CPU
# chunks, discarded), and with scap.ko + `sysdig -w /dev/null`.  The configurations are
# interleaved in each repetition.  Prints the markdown table recorded in RESULTS.md.
#
#   benchmarks/bench_kmod.sh            (REPS=5 by default; REPS=3 benchmarks/bench_kmod.sh)
#
# The guest boots with tsc=reliable (FALCONET_VM_APPEND; set it to "" for the kernel's own
# choice): under TCG the kernel otherwise falls back to the emulated HPET, whose every read
# costs 1-2 us and dominates both drivers' per-event cost, unlike real x86 hosts (TSC).
#
# Installs falcosecurity-scap-dkms and sysdig if missing (DKMS builds scap.ko for the
# Debian kernel the VM boots).  Takes ~10-15 minutes on a 2-core host.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export FALCONET_VM_WORK=${FALCONET_VM_WORK:-/tmp/falconet-vm-bench}
export FALCONET_VM_TIMEOUT=${FALCONET_VM_TIMEOUT:-1800}
export FALCONET_VM_APPEND=${FALCONET_VM_APPEND-tsc=reliable}
rc=0
"$HERE/../tests/vm/run_vm.sh" bench || rc=$?
cat "$FALCONET_VM_WORK/out/bench.md" 2>/dev/null || true
exit $rc
