#!/bin/bash
# Benchmark, inside the VM: syscall loops with no module, with falconet.ko + a live reader
# draining the rings, and with Falco's scap.ko + `sysdig -w /dev/null`.  The three
# configurations are interleaved within each repetition so host-load drift hits all alike.
# One line per run:
#   BENCH config=<c> mode=<m> rep=<r> ns_per_syscall=<x> events=<e> drops=<d>
set -u
O=/falconet-out
. $O/env.sh
export PYTHONPATH=$REPO PYTHONDONTWRITEBYTECODE=1
REPS=${REPS:-5}
WORKLOADS="getpid:200000 openclose:50000 mixed:20000"
B() { echo "BENCH $*" | tee -a $O/bench.txt; }
storm() { timeout 300 $O/storm $1 $2 | sed -n 's/.*ns_per_syscall=\([0-9.]*\).*/\1/p'; }
# stop PID with SIG, give it 30 s to write its summary, then SIGKILL
stop() { kill -$2 $1; for i in $(seq 1 300); do kill -0 $1 2>/dev/null || break; sleep 0.1; done
         kill -0 $1 2>/dev/null && { B "error=pid-$1-did-not-stop"; kill -9 $1; }; wait $1 2>/dev/null; }
wait_fd() { for i in $(seq 1 300); do ls -l /proc/$1/fd 2>/dev/null | grep -q "$2" && return 0; sleep 0.1; done; return 1; }
cd /
: > $O/bench.txt
SCAP=$(ls /lib/modules/$K/updates/dkms/scap.ko* 2>/dev/null | head -1)
B "kernel=$(uname -r) cpus=$(nproc) clocksource=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource) reps=$REPS workloads=$WORKLOADS scap=${SCAP:-none}"
[ -n "$SCAP" ] && command -v sysdig > /dev/null || B "error=no-scap (install falcosecurity-scap-dkms sysdig)"

for rep in $(seq 1 $REPS); do
  for w in $WORKLOADS; do
    m=${w%%:*}; n=${w##*:}
    B "config=baseline mode=$m rep=$rep ns_per_syscall=$(storm $m $n) events=0 drops=0"
  done

  insmod $O/falconet.ko || B "error=falconet-insmod"
  for w in $WORKLOADS; do
    m=${w%%:*}; n=${w##*:}
    rm -f $O/bench.bin.ready
    $PY $O/reader.py --out $O/bench.bin --raw --discard > /dev/null 2>&1 &
    R=$!
    for i in $(seq 1 600); do [ -f $O/bench.bin.ready ] && break; sleep 0.1; done
    ns=$(storm $m $n)
    stop $R TERM
    ev=$($PY -c "import json; d=json.load(open('$O/bench.bin.stats.json')); print(d['kernel_events'], d['kernel_drops_full'])")
    B "config=falconet mode=$m rep=$rep ns_per_syscall=$ns events=${ev% *} drops=${ev#* }"
  done
  # the probe runs but getpid is not in the interest set: the cost of the bit test path
  rm -f $O/bench.bin.ready
  $PY $O/reader.py --out $O/bench.bin --raw --discard --interest openat,close > /dev/null 2>&1 &
  R=$!
  for i in $(seq 1 600); do [ -f $O/bench.bin.ready ] && break; sleep 0.1; done
  ns=$(storm getpid 200000)
  stop $R TERM
  B "config=falconet_uninterested mode=getpid rep=$rep ns_per_syscall=$ns events=0 drops=0"
  rmmod falconet
  B "config=clock mode=clock_gettime_boottime rep=$rep ns_per_syscall=$(storm clock 100000) events=0 drops=0"

  [ -n "$SCAP" ] || continue
  insmod $SCAP || B "error=scap-insmod"
  for w in $WORKLOADS; do
    m=${w%%:*}; n=${w##*:}
    sysdig -v -w /dev/null > $O/sysdig.log 2>&1 &
    S=$!
    wait_fd $S /dev/scap || B "error=sysdig-did-not-open-scap"
    sleep 0.5
    ns=$(storm $m $n)
    stop $S INT
    ev=$(tr -d '\r' < $O/sysdig.log | sed -n 's/.*Driver Events: *\([0-9]*\).*/\1/p' | tail -1)
    dr=$(tr -d '\r' < $O/sysdig.log | sed -n 's/.*Driver Drops: *\([0-9]*\).*/\1/p' | tail -1)
    B "config=scap mode=$m rep=$rep ns_per_syscall=$ns events=${ev:-?} drops=${dr:-?}"
  done
  cp $O/sysdig.log $O/sysdig-last.log
  rmmod scap
done
dmesg > $O/dmesg.txt
B "done"
