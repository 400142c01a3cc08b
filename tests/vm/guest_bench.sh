#!/bin/bash
# Benchmark, inside the VM: syscall loops with no module, with falconet.ko + the C ring reader
# draining and decoding the records (tests/vm/bench_reader.py: ext/ring.c + collector.native's
# decoder, as `falconet run` reads), and with Falco's scap.ko + `sysdig -w /dev/null`.  The
# three configurations are interleaved within each repetition so host-load drift hits all alike.
# One line per run:
#   BENCH config=<c> mode=<m> rep=<r> ns_per_syscall=<x> events=<e> drops=<d> [reader stats]
# Every step is bounded (storm 120 s, reader/sysdig start 60 s, stop 30 s then SIGKILL, a
# process that even SIGKILL cannot end is left behind and reported): a stalled step becomes an
# error=... line and the run goes on.
# Reader settings from the kernel command line (FALCONET_VM_APPEND on the host):
#   fnbench.wm=BYTES (watermark, default 1 MiB)  fnbench.poll=MS (default 100)
#   fnbench.decode=0 (read and merge only)       fnbench.reps=N (overrides REPS)
#   fnbench.wait=reader (fnet_reader_wait as LiveSource calls it: returns at once while any ring
#   holds data, so the reader spins with small batches; default poll: sleep in the device's
#   poll, woken at the watermark or the module's 50 ms flush age, large batches)
#   fnbench.path=copy (read into a buffer, then decode; default auto: decode in the rings if
#   the extension has Decoder.decode_ring, the live collector's path)
#   fnbench.ab=reader|poll (also run falconet with that wait, as config falconet_wait_<w>)
#   fnbench.ring=BYTES (falconet.ko ring_bytes; default: the module's 8 MiB, like scap's)
set -u
O=/falconet-out
. $O/env.sh
export PYTHONPATH=$REPO PYTHONDONTWRITEBYTECODE=1
karg() { tr ' ' '\n' < /proc/cmdline | sed -n "s/^fnbench\.$1=//p" | tail -1; }
KR=$(karg reps); REPS=${KR:-${REPS:-5}}
WM=$(karg wm); WM=${WM:-1048576}
POLL=$(karg poll); POLL=${POLL:-100}
DEC=$(karg decode); DEC=${DEC:-1}
WAIT=$(karg wait); WAIT=${WAIT:-poll}
RPATH=$(karg path); RPATH=${RPATH:-auto}
AB=$(karg ab)         # a second falconet configuration: --wait $AB
RING=$(karg ring)     # falconet.ko ring_bytes per CPU; empty = the module's default (8 MiB)
RARGS="--watermark $WM --poll-ms $POLL --wait $WAIT --path $RPATH"
[ "$DEC" = 0 ] && RARGS="$RARGS --no-decode"
WORKLOADS="getpid:200000 openclose:50000 mixed:20000"
B() { echo "BENCH $*" | tee -a $O/bench.txt; }
# prints ns_per_syscall, or nothing if the loop failed or hit its timeout
storm() { timeout -s KILL 120 $O/storm $1 $2 | sed -n 's/.*ns_per_syscall=\([0-9.]*\).*/\1/p'; }
# stop PID with SIG, give it 30 s to finish (and write its summary), then SIGKILL and 10 s more;
# never an unbounded wait (a process stuck in the kernel survives SIGKILL)
stop() { kill -$2 $1 2>/dev/null; for i in $(seq 1 300); do kill -0 $1 2>/dev/null || break; sleep 0.1; done
         if kill -0 $1 2>/dev/null; then
           B "error=pid-$1-$3-did-not-stop"; kill -9 $1
           for i in $(seq 1 100); do kill -0 $1 2>/dev/null || break; sleep 0.1; done
           kill -0 $1 2>/dev/null && { B "error=pid-$1-$3-survives-sigkill"; return 1; }
         fi
         wait $1 2>/dev/null; return 0; }
wait_fd() { for i in $(seq 1 600); do ls -l /proc/$1/fd 2>/dev/null | grep -q "$2" && return 0; sleep 0.1; done; return 1; }
# start bench_reader.py (args...), wait until it has started capture; sets R
reader() { rm -f $O/bench.bin.ready $O/bench.bin.stats.json
           $PY $O/bench_reader.py --out $O/bench.bin $RARGS "$@" > $O/reader.log 2>&1 &
           R=$!
           for i in $(seq 1 600); do [ -f $O/bench.bin.ready ] && return 0; kill -0 $R 2>/dev/null || break; sleep 0.1; done
           B "error=reader-did-not-start"; cat $O/reader.log >> $O/bench-errors.txt; return 1; }
# the reader's summary as key=value pairs
rstats() { $PY -c "import json; d=json.load(open('$O/bench.bin.stats.json'))
print('events=%d drops=%d records=%d decoded=%d batches=%d max_batch=%d max_pending=%d full_reads=%d max_gap_ms=%.0f max_proc_ms=%.0f read_s=%.3f decode_s=%.3f loop_cpu_s=%.2f reader_cpu_s=%.2f path=%s wait=%s max_wake_ms=%.0f late_wakeups=%d max_late_pending=%d' % (
 d['kernel_events'], d['kernel_drops_full'], d['records'], d['decoded'], d['batches'], d['max_batch'],
 d['max_pending'], d['full_reads'], d['max_gap_ms'], d['max_proc_ms'], d['read_s'], d['decode_s'],
 d['loop_cpu_s'], d['cpu_user_s'] + d['cpu_sys_s'], d['path'], d['wait'], d.get('max_wake_ms', 0), d.get('late_wakeups', 0), d.get('max_late_pending', 0)))" 2>/dev/null || echo "events=? drops=?"; }
cd /
: > $O/bench.txt
SCAP=$(ls /lib/modules/$K/updates/dkms/scap.ko* 2>/dev/null | head -1)
B "kernel=$(uname -r) cpus=$(nproc) clocksource=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource) reps=$REPS workloads=$WORKLOADS scap=${SCAP:-none} reader=bench_reader.py watermark=$WM poll_ms=$POLL decode=$DEC wait=$WAIT path=$RPATH ab=${AB:-none} ring_bytes=${RING:-default}"
[ -n "$SCAP" ] && command -v sysdig > /dev/null || B "error=no-scap (install falcosecurity-scap-dkms sysdig)"

for rep in $(seq 1 $REPS); do
  for w in $WORKLOADS; do
    m=${w%%:*}; n=${w##*:}
    ns=$(storm $m $n)
    [ -n "$ns" ] || B "error=storm-$m-failed config=baseline rep=$rep"
    B "config=baseline mode=$m rep=$rep ns_per_syscall=${ns:-?} events=0 drops=0"
  done

  insmod $O/falconet.ko ${RING:+ring_bytes=$RING} || B "error=falconet-insmod"
  # falconet + reader; with fnbench.ab=<wait> also with --wait <wait> (config
  # falconet_wait_<wait>), the two in alternating order from one repetition to the next
  fruns="falconet:"
  [ -n "$AB" ] && { [ $((rep % 2)) = 1 ] && fruns="falconet: falconet_wait_$AB:--wait=$AB" || fruns="falconet_wait_$AB:--wait=$AB falconet:"; }
  for w in $WORKLOADS; do
    m=${w%%:*}; n=${w##*:}
    for fr in $fruns; do
      cfg=${fr%%:*}; extra=${fr#*:}
      reader $extra || { stop $R TERM reader; continue; }
      ns=$(storm $m $n)
      [ -n "$ns" ] || B "error=storm-$m-failed config=$cfg rep=$rep"
      stop $R TERM reader
      B "config=$cfg mode=$m rep=$rep ns_per_syscall=${ns:-?} $(rstats)"
    done
  done
  # the probe runs but getpid is not in the interest set: the cost of the bit test path
  if reader --interest openat,close; then
    ns=$(storm getpid 200000)
    stop $R TERM reader
    B "config=falconet_uninterested mode=getpid rep=$rep ns_per_syscall=${ns:-?} events=0 drops=0"
  else stop $R TERM reader; fi
  rmmod falconet || B "error=falconet-rmmod rep=$rep"
  B "config=clock mode=clock_gettime_boottime rep=$rep ns_per_syscall=$(storm clock 100000) events=0 drops=0"

  [ -n "$SCAP" ] || continue
  insmod $SCAP || B "error=scap-insmod"
  for w in $WORKLOADS; do
    m=${w%%:*}; n=${w##*:}
    sysdig -v -w /dev/null > $O/sysdig.log 2>&1 &
    S=$!
    wait_fd $S /dev/scap || B "error=sysdig-did-not-open-scap rep=$rep mode=$m"
    sleep 0.5
    ns=$(storm $m $n)
    [ -n "$ns" ] || B "error=storm-$m-failed config=scap rep=$rep"
    stop $S INT sysdig
    ev=$(tr -d '\r' < $O/sysdig.log | sed -n 's/.*Driver Events: *\([0-9]*\).*/\1/p' | tail -1)
    dr=$(tr -d '\r' < $O/sysdig.log | sed -n 's/.*Driver Drops: *\([0-9]*\).*/\1/p' | tail -1)
    B "config=scap mode=$m rep=$rep ns_per_syscall=${ns:-?} events=${ev:-?} drops=${dr:-?}"
  done
  cp $O/sysdig.log $O/sysdig-last.log
  rmmod scap || B "error=scap-rmmod rep=$rep"
done
dmesg > $O/dmesg.txt
B "done"
