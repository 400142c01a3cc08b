#!/bin/bash
# Guest side of `run_vm.sh tpstorm`: a diagnostic WITHOUT falconet.ko.  Toggles the
# raw_syscalls:sys_exit tracepoint through tracefs 150 times under the same two syscall storms
# as the module's load/unload cycles, so a kernel or emulator problem with tracepoint text
# patching shows up without the module (see kmod/README.md, "6.12 under multi-threaded TCG").
O=/falconet-out
T=/sys/kernel/tracing
[ -d $T/events ] || mount -t tracefs none $T 2>/dev/null
[ -d $T/events ] || T=/sys/kernel/debug/tracing
echo "kernel $(uname -r), tracefs at $T" > $O/tp.log
$O/storm mixed 100000000 > /dev/null &
S1=$!
$O/storm getpid 1000000000 > /dev/null &
S2=$!
for i in $(seq 1 150); do
  echo 1 > $T/events/raw_syscalls/sys_exit/enable || echo "enable failed in round $i" >> $O/tp.log
  sleep 0.1
  echo 0 > $T/events/raw_syscalls/sys_exit/enable
  sleep 0.1
  echo "round $i" >> $O/tp.log
done
kill $S1 $S2
dmesg > $O/dmesg.txt
echo done
