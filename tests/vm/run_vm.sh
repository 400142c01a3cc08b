#!/bin/bash
# tests/vm/run_vm.sh - build falconet.ko against Debian's kernel, boot that kernel under qemu
# (TCG), run a guest script with the host's root shared read-only over 9p, and check the
# results from the host.
#
#   tests/vm/run_vm.sh [test|bench|demo|tpstorm]   (or: make -C tests/vm vm-test | vm-bench | vm-demo)
#
#   test   load the module, run the scripted workload with a live reader, unload/reload
#          cycles under load; tests/vm/check.py verifies every action and the kernel log.
#   bench  syscall loops with no module, falconet.ko + reader, scap.ko + sysdig -w /dev/null.
#   demo   record tests/data/demo.fcap from a realistic session (event-generator behaviours).
#   tpstorm  diagnostic without the module: toggle raw_syscalls:sys_exit through tracefs under
#          syscall storms (guest_tpstorm.sh); passes when the kernel log stays clean.
#
# Environment: FALCONET_VM_WORK (scratch dir, default /tmp/falconet-vm), FALCONET_VM_TIMEOUT
# (seconds for qemu, default 420), FALCONET_VM_NOINSTALL=1 (skip apt-get),
# FALCONET_VM_APPEND (extra kernel command line, e.g. "tsc=reliable"),
# FALCONET_VM_KERNEL (which kernel to boot: unset = the linux-image-amd64 metapackage's kernel;
#   "6.12", "6.12-rt", "6.1-rt", ... = the newest installed Debian image of that series and
#   flavour, installing the linux-image-/linux-headers- metapackage when none is; or an exact
#   version as in /boot/vmlinuz-<version>),
# FALCONET_VM_ACCEL (qemu -accel value, default "tcg": one host thread per vCPU; use
#   "tcg,thread=single" to run the vCPUs round-robin in one thread, see kmod/README.md).
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
# Another kernel: FALCONET_VM_KERNEL=<series>[-<flavour>] (6.12, 6.12-rt, 6.1-rt) resolves the
# newest installed /boot/vmlinuz-<series>.*[-<flavour>]-amd64; never a pinned version.
newest_image() {  # $1 series, $2 flavour ("" = generic)
  local v
  for v in $(ls /boot 2>/dev/null | sed -n 's/^vmlinuz-//p' | sort -V); do
    case "$v" in "$1".*|"$1"-*) ;; *) continue ;; esac
    case "$v" in
      *-rt-amd64) [ "$2" = rt ] || continue ;;
      *-cloud-amd64) [ "$2" = cloud ] || continue ;;
      *-amd64) [ -z "$2" ] || continue ;;
      *) continue ;;
    esac
    echo "$v"
  done | tail -1
}
if [ -n "${FALCONET_VM_KERNEL:-}" ]; then
  if [ -f "/boot/vmlinuz-$FALCONET_VM_KERNEL" ]; then
    K=$FALCONET_VM_KERNEL
  else
    series=${FALCONET_VM_KERNEL%%-*}; flav=""
    [ "$series" != "$FALCONET_VM_KERNEL" ] && flav=${FALCONET_VM_KERNEL#*-}
    want=$(newest_image "$series" "$flav")
    if [ -z "$want" ]; then
      # Debian's metapackages: linux-image-6.12-rt-amd64 for another series, linux-image-rt-amd64
      # for a flavour of the default series.
      if [ "$series" = "$(echo "$K" | cut -d. -f1-2)" ]; then meta="${flav:+$flav-}amd64"
      else meta="$series-${flav:+$flav-}amd64"; fi
      [ -n "${FALCONET_VM_NOINSTALL:-}" ] && die "no installed $FALCONET_VM_KERNEL kernel (apt-get install linux-image-$meta linux-headers-$meta)"
      [ "$(id -u)" = 0 ] || die "no installed $FALCONET_VM_KERNEL kernel; run as root or install linux-image-$meta linux-headers-$meta"
      log "installing linux-image-$meta linux-headers-$meta"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "linux-image-$meta" "linux-headers-$meta" >/dev/null || die "apt-get install linux-image-$meta failed"
      want=$(newest_image "$series" "$flav")
    fi
    [ -n "$want" ] || die "FALCONET_VM_KERNEL=$FALCONET_VM_KERNEL: no matching /boot/vmlinuz-*"
    K=$want
  fi
fi
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

# --- 3. kernel: PVH vmlinux extracted from the bzImage (skips ~5 s of TCG decompression).
# Debian's 6.1 bzImage is XZ, 6.12's is ZSTD; the payload is the first frame after its magic
# (zstd complains about the bytes after that frame: its status is ignored, the ELF note decides).
VMLINUX="$WORK/vmlinux-$K"
if [ ! -s "$VMLINUX" ]; then
  for fmt in xz zstd; do
    case $fmt in
      xz) magic='\xfd7zXZ\x00'; unpack() { xz -dc --single-stream; } ;;
      zstd) magic='\x28\xb5\x2f\xfd'; unpack() { zstd -qdc; } ;;
    esac
    command -v $fmt >/dev/null || continue
    off=$( (LC_ALL=C grep -obUaP "$magic" "/boot/vmlinuz-$K" || true) | head -1 | cut -d: -f1)
    [ -n "$off" ] || continue
    (tail -c +$((off + 1)) "/boot/vmlinuz-$K" | unpack > "$VMLINUX.tmp" 2>/dev/null) || true
    if readelf -n "$VMLINUX.tmp" 2>/dev/null | grep -q "0x00000012"; then
      mv "$VMLINUX.tmp" "$VMLINUX"; break
    fi
  done
  rm -f "$VMLINUX.tmp"
  [ -s "$VMLINUX" ] || cp "/boot/vmlinuz-$K" "$VMLINUX"   # bzImage works too, slower
fi

# --- 4. initramfs: busybox, /init, the 9p/overlay modules of that kernel ---------------------
IR="$WORK/initramfs"
rm -rf "$IR"; mkdir -p "$IR"/{bin,proc,sys,dev,modules}
cp /bin/busybox "$IR/bin/busybox"
cp "$HERE/guest_init.sh" "$IR/init"; chmod +x "$IR/init"
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci netfs fscache 9pnet 9pnet_virtio 9p overlay; do
  f=$(find "/lib/modules/$K/kernel" -name "$m.ko*" | head -1)
  if [ -z "$f" ]; then
    # Built in (6.12: virtio*), or merged into another module (6.8 folded fscache into netfs):
    # guest_init.sh then just reports that this insmod failed.
    grep -qE "/$m\.ko\$" "/lib/modules/$K/modules.builtin" 2>/dev/null && continue
    [ "$m" = fscache ] && ! modinfo -k "$K" -F depends 9p 2>/dev/null | tr , '\n' | grep -qx fscache && continue
    die "kernel module $m not found for $K"
  fi
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
log "booting ($MODE) under qemu -accel ${FALCONET_VM_ACCEL:-tcg}, timeout ${TIMEOUT}s"
T1=$(date +%s)
set +e
# serial console straight to a file (not stdio: robust whatever stdout is, e.g. under pytest)
timeout "$TIMEOUT" qemu-system-x86_64 -accel "${FALCONET_VM_ACCEL:-tcg}" -cpu max -smp 2 -m 2048 -no-reboot \
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
if [ "$MODE" = tpstorm ]; then
  rounds=$(grep -c "^round" "$WORK/out/tp.log" 2>/dev/null || true)
  if grep -qE "Oops|BUG[: ]|WARNING:|Kernel panic" "$WORK/out/serial.txt" "$WORK/out/dmesg.txt" 2>/dev/null; then
    log "tpstorm: kernel oops/warning after $rounds rounds (see $WORK/out/serial.txt)"; exit 1
  fi
  log "tpstorm: $rounds rounds, clean kernel log, total $(($(date +%s) - T0)) s"; exit 0
fi
set +e
python3 "$HERE/check.py" "$MODE" "$WORK/out" "$REPO"
RC=$?
set -e
log "total $(($(date +%s) - T0)) s, result $RC"
exit $RC
