#!/bin/bash
# Runs inside the VM (chroot into the host's root, overlay-writable).  Results go to
# /falconet-out; tests/vm/check.py reads them on the host.
set -u
O=/falconet-out
. $O/env.sh
export PYTHONPATH=$REPO PYTHONDONTWRITEBYTECODE=1
R() { echo "RESULT $*" | tee -a $O/results.txt; }
meminfo() { sync; echo 3 > /proc/sys/vm/drop_caches; awk '/^(MemAvailable|VmallocUsed|Percpu):/ {printf "%s=%s ", $1, $2}' /proc/meminfo; }
cd /

R "kernel $(uname -r) preempt=$(cat /sys/kernel/debug/sched/preempt 2>/dev/null | tr -d '\n')"
# cgroup v2 (the workload creates container-like cgroups in it); the initramfs mounts none
grep -q '^cgroup2 /sys/fs/cgroup ' /proc/mounts || mount -t cgroup2 cgroup2 /sys/fs/cgroup
R "cgroup2 $(grep -c '^cgroup2 /sys/fs/cgroup ' /proc/mounts)"
R "mem_before $(meminfo)"
# 32 MiB per CPU: the storm below must fit even if the Python reader falls behind under TCG
insmod $O/falconet.ko ring_bytes=$((32 << 20)); R "insmod rc=$?"
[ -c /dev/falconet ]; R "device rc=$?"

# --- live reader + the scripted workload -------------------------------------------------------
$PY $O/reader.py --out $O/capture.bin > $O/reader.log 2>&1 &
READER=$!
for i in $(seq 1 600); do [ -f $O/capture.bin.ready ] && break; sleep 0.1; done
R "reader_ready $([ -f $O/capture.bin.ready ] && echo yes || echo no)"
$PY $O/workload.py $O/workload.json $O/storm > $O/workload.log 2>&1; R "workload rc=$?"
# CPU hotplug while capturing: take CPU 1 away and back, keep capturing
echo 0 > /sys/devices/system/cpu/cpu1/online; R "cpu1_offline rc=$?"
$O/storm getpid 2000 > /dev/null
echo 1 > /sys/devices/system/cpu/cpu1/online; R "cpu1_online rc=$?"
$O/storm getpid 2000 > /dev/null
sleep 0.3
rmmod falconet 2> $O/rmmod_busy.txt; R "rmmod_while_reading rc=$?"
kill -TERM $READER; wait $READER; R "reader rc=$?"

# around_demo NAME DEMO CMD...: start CMD (a live reader of /dev/falconet), wait until it has
# the device open, run the event-generator session (result and log DEMO), stop CMD with
# SIGINT (result NAME).
around_demo() {
  local name=$1 demo=$2; shift 2
  "$@" &
  local pid=$!
  for i in $(seq 1 600); do ls -l /proc/$pid/fd 2>/dev/null | grep -q /dev/falconet && break; sleep 0.1; done
  sleep 1
  (cd /root && $PY $O/demo_session.py > $O/$demo.log 2>&1); R "$demo rc=$?"
  sleep 1
  kill -INT $pid; wait $pid; R "$name rc=$?"
}

# --- `falconet capture` (the CLI, live source) around the event-generator behaviours ---------
around_demo capture demo sh -c "exec $PY -m collector capture -w $O/demo.fcap > $O/capture.log 2>&1"

# --- `falconet run` live: the bundled rules on enriched live events (the C ring reader
# merging and decoding in place, the state engine, the bundled rules), the same session again
rm -rf /tmp/.falconet-hidden /root/.ssh     # made by the first session: mkdir must succeed again
around_demo run demo_run sh -c "exec $PY -m collector run --json --stats-json > $O/run_alerts.json 2> $O/run.log"

# --- unload/reload cycles under load ------------------------------------------------------------
$O/storm mixed 100000000 > /dev/null &
L1=$!
$O/storm getpid 1000000000 > /dev/null &
L2=$!
rmmod falconet; R "rmmod_under_load rc=$?"
# cycles 5-7 (after the killed-reader cycle 4's number) only add allocate/free rounds for
# the memory check: a per-cycle leak then grows with every round, well above the noise.
for i in 1 2 3 5 6 7; do
  insmod $O/falconet.ko ring_bytes=$((16 << 20)); R "cycle${i}_insmod rc=$?"
  $PY $O/reader.py --out $O/cycle$i.bin --seconds 1.5 --discard > $O/cycle$i.log 2>&1; R "cycle${i}_reader rc=$?"
  rmmod falconet; R "cycle${i}_rmmod rc=$?"
  [ $i = 1 ] && R "mem_warm $(meminfo)" && { cat /proc/meminfo > $O/meminfo_warm.txt; ps -eo rss,comm > $O/ps_warm.txt; }
done
# a reader killed while it has the rings mapped and capture running
insmod $O/falconet.ko ring_bytes=$((32 << 20)); R "cycle4_insmod rc=$?"
$PY $O/reader.py --out $O/cycle4.bin --discard > $O/cycle4.log 2>&1 &
K4=$!
for i in $(seq 1 600); do [ -f $O/cycle4.bin.ready ] && break; sleep 0.1; done
sleep 1; kill -KILL $K4; wait $K4 2>/dev/null
sleep 0.2
rmmod falconet; R "cycle4_rmmod_after_kill rc=$?"
kill $L1 $L2; wait $L1 $L2 2>/dev/null
sleep 0.5
R "mem_after $(meminfo)"
cat /proc/meminfo > $O/meminfo_after.txt; ps -eo rss,comm > $O/ps_after.txt
R "tainted $(cat /proc/sys/kernel/tainted)"
dmesg > $O/dmesg.txt
R "done"
