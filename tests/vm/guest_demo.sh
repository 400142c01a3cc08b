#!/bin/bash
# Records tests/data/demo.fcap in the VM: `falconet capture` (live source, real module)
# around demo_session.py, the host-applicable event-generator behaviours.
set -u
O=/falconet-out
. $O/env.sh
export PYTHONPATH=$REPO PYTHONDONTWRITEBYTECODE=1
R() { echo "RESULT $*" | tee -a $O/results.txt; }
cd /root 2>/dev/null || cd /
insmod $O/falconet.ko; R "insmod rc=$?"
$PY -m collector capture -w $O/demo.fcap > $O/capture.log 2>&1 &
C=$!
for i in $(seq 1 600); do ls -l /proc/$C/fd 2>/dev/null | grep -q /dev/falconet && break; sleep 0.1; done
sleep 1
$PY $O/demo_session.py > $O/demo.log 2>&1; R "demo rc=$?"
sleep 1
kill -INT $C; wait $C; R "capture rc=$?"
rmmod falconet; R "rmmod rc=$?"
dmesg > $O/dmesg.txt
R "done"
