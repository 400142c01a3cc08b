#!/bin/bash
# tests/vm/run_vm.sh - build falconet.ko against Debian's kernel, boot that kernel under qemu
# (TCG), run a guest script with the host's root shared read-only over 9p, and check the
# results from the host.
#
#   tests/vm/run_vm.sh [test|bench|demo]     (or: make -C tests/vm vm-test | vm-bench | vm-demo)
#
#   test   load the module, run the scripted workload with a live reader, unload/reload
#          cycles under load; tests/vm/check.py verifies every action and the kernel log.
#   bench  syscall loops with no module, falconet.ko + reader, scap.ko + sysdig -w /dev/null.
#   demo   record tests/data/demo.fcap from a realistic session (event-generator behaviours).
#
# Environment: FALCONET_VM_WORK (scratch dir, default /tmp/falconet-vm), FALCONET_VM_TIMEOUT
# (seconds for qemu, default 420), FALCONET_VM_NOINSTALL=1 (skip apt-get),
# FALCONET_VM_APPEND (extra kernel command line, e.g. "tsc=reliable").
# Exit status: 0 pass, 1 checks failed, 2 could not run (what is missing is printed).
set -euo pipefail
MODE=${1:-test}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
WORK=${FALCONET_VM_WORK:-/tmp/falconet-vm}
TIMEOUT=${FALCONET_VM_TIMEOUT:-420}
log() { echo "vm-test: $*" >&2; }
die() { log "$*"; exit 2; }
T0=$(date +%s)

# --- 1. packages (never a pinned kernel version: the metapackages resolve it) ----------------
PKGS="qemu-system-x86 linux-image-amd64 linux-headers-amd64 busybox-static kmod build-essential cpio xz-utils"
[ "$MODE" = bench ] && PKGS="$PKGS falcosecurity-scap-dkms sysdig dkms"
missing=""
for p in $PKGS; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"; done
if [ -n "$missing" ]; then
  [ -n "${FALCONET_VM_NOINSTALL:-}" ] && die "missing Debian packages:$missing (apt-get install them)"
  [ "$(id -u)" = 0 ] || die "missing Debian packages:$missing; run as root or install them"
  log "installing:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends $missing >/dev/null || die "apt-get install$missing failed"
fi
K=$(dpkg-query -W -f='${Depends}' linux-image-amd64 | sed -n 's/.*linux-image-\([^ ,]*\).*/\1/p' | head -1)
[ -n "$K" ] || die "cannot resolve the kernel version from linux-image-amd64"
KDIR=/usr/src/linux-headers-$K
[ -d "$KDIR" ] || die "no headers in $KDIR (install linux-headers-$K)"
[ -f "/boot/vmlinuz-$K" ] || die "no /boot/vmlinuz-$K"
log "kernel $K"

# --- 2. build the module (zero warnings) -----------------------------------------------------
rm -rf "$WORK/out" "$WORK/kmod"
mkdir -p "$WORK/out" "$WORK/kmod"
cp -r "$REPO/kmod/." "$WORK/kmod/"
make -C "$WORK/kmod" KDIR="$KDIR" clean >/dev/null 2>&1 || true
if ! make -C "$WORK/kmod" KDIR="$KDIR" > "$WORK/out/build.log" 2>&1; then
  cat "$WORK/out/build.log" >&2; log "module build failed"; exit 1
fi
if grep -E "warning:|error:" "$WORK/out/build.log" >&2; then log "module build has warnings"; exit 1; fi
cp "$WORK/kmod/falconet.ko" "$WORK/out/"
gcc -O2 -static -o "$WORK/out/storm" "$HERE/storm.c" || die "cannot build tests/vm/storm.c"
log "module built ($(($(date +%s) - T0)) s)"

# --- 3. kernel: PVH vmlinux extracted from the XZ bzImage (skips ~5 s of TCG decompression)
VMLINUX="$WORK/vmlinux-$K"
if [ ! -s "$VMLINUX" ]; then
  off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "/boot/vmlinuz-$K" | head -1 | cut -d: -f1)
  if [ -n "$off" ] && tail -c +$((off + 1)) "/boot/vmlinuz-$K" | xz -dc --single-stream > "$VMLINUX.tmp" 2>/dev/null \
     && readelf -n "$VMLINUX.tmp" 2>/dev/null | grep -q "0x00000012"; then
    mv "$VMLINUX.tmp" "$VMLINUX"
  else
    rm -f "$VMLINUX.tmp"; cp "/boot/vmlinuz-$K" "$VMLINUX"   # bzImage works too, slower
  fi
fi

# --- 4. initramfs: busybox, /init, the 9p/overlay modules of that kernel ---------------------
IR="$WORK/initramfs"
rm -rf "$IR"; mkdir -p "$IR"/{bin,proc,sys,dev,modules}
cp /bin/busybox "$IR/bin/busybox"
cp "$HERE/guest_init.sh" "$IR/init"; chmod +x "$IR/init"
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci netfs fscache 9pnet 9pnet_virtio 9p overlay; do
  f=$(find "/lib/modules/$K/kernel" -name "$m.ko*" | head -1)
  [ -n "$f" ] || die "kernel module $m not found for $K"
  case "$f" in
    *.xz) xz -dc "$f" > "$IR/modules/$m.ko" ;;
    *.zst) zstd -qdc "$f" > "$IR/modules/$m.ko" ;;
    *) cp "$f" "$IR/modules/$m.ko" ;;
  esac
done
(cd "$IR" && find . | cpio -o -H newc --quiet | gzip -1) > "$WORK/initramfs.cpio.gz"

# --- 5. guest inputs ---------------------------------------------------------------------------
PY=$(python3 -c 'import sys; print(sys.executable)')
cp "$HERE"/guest_*.sh "$HERE"/*.py "$WORK/out/"
cat > "$WORK/out/env.sh" <<ENV
REPO=$REPO
PY=$PY
K=$K
MODE=$MODE
REPS=${REPS:-5}
ENV

# --- 6. boot ------------------------------------------------------------------------------------
log "booting ($MODE) under qemu TCG, timeout ${TIMEOUT}s"
T1=$(date +%s)
set +e
# serial console straight to a file (not stdio: robust whatever stdout is, e.g. under pytest)
timeout "$TIMEOUT" qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m 2048 -no-reboot \
  -display none -monitor none -serial file:"$WORK/out/serial.log" \
  -kernel "$VMLINUX" -initrd "$WORK/initramfs.cpio.gz" \
  -append "console=ttyS0 panic=-1 quiet loglevel=4 preempt=full falconet.script=guest_$MODE.sh ${FALCONET_VM_APPEND:-}" \
  -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
  -virtfs local,path="$WORK/out",mount_tag=out,security_model=none \
  < /dev/null > "$WORK/out/qemu.log" 2>&1
QRC=$?
set -e
tr -d '\r' < "$WORK/out/serial.log" > "$WORK/out/serial.txt"
log "qemu exited $QRC after $(($(date +%s) - T1)) s"
[ $QRC = 124 ] && { tail -30 "$WORK/out/serial.txt" >&2; log "qemu timed out"; exit 1; }
[ $QRC != 0 ] && { cat "$WORK/out/qemu.log" >&2; log "qemu failed"; exit 1; }
grep -q "script exited" "$WORK/out/serial.txt" || grep -qs "done" "$WORK/out/guest.log" || { tail -40 "$WORK/out/serial.txt" >&2; log "guest did not finish its script"; exit 1; }

# --- 7. check from the host ------------------------------------------------------------------------
set +e
python3 "$HERE/check.py" "$MODE" "$WORK/out" "$REPO"
RC=$?
set -e
log "total $(($(date +%s) - T0)) s, result $RC"
exit $RC
