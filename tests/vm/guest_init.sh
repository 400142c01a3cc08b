#!/bin/busybox sh
# /init of the test initramfs (busybox is PID 1).  Mounts the host's root read-only over 9p
# with a tmpfs overlay on top (so the guest can write under /etc), the writable `out` share
# at /falconet-out, then runs the script named by falconet.script= in a chroot and powers off.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
arg() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
SCRIPT=$(arg falconet.script)
say() { echo "VMINIT: $*" > /dev/console; }
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci \
         netfs fscache 9pnet 9pnet_virtio 9p overlay; do
  insmod /modules/$m.ko 2>/dev/null || say "insmod $m failed"
done
mkdir -p /lower /rw /newroot
mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=512000,cache=loose hostroot /lower || say "9p hostroot mount failed"
mount -t tmpfs -o mode=755 tmpfs /rw
mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /newroot || say "overlay mount failed"
mkdir -p /newroot/falconet-out
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 out /newroot/falconet-out || say "out mount failed"
mount -t proc proc /newroot/proc
mount -t sysfs sys /newroot/sys
mount -t devtmpfs dev /newroot/dev
mkdir -p /newroot/dev/pts /newroot/dev/shm
mount -t devpts devpts /newroot/dev/pts
mount -t tmpfs tmpfs /newroot/dev/shm
mount -t tmpfs tmpfs /newroot/run
mount -t debugfs none /newroot/sys/kernel/debug 2>/dev/null
ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up
say "chroot ready, running $SCRIPT"
env -i HOME=/root TERM=dumb PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  chroot /newroot /bin/bash "/falconet-out/$SCRIPT" > /newroot/falconet-out/guest.log 2>&1
say "script exited $?"
dmesg > /newroot/falconet-out/dmesg-final.txt
sync
poweroff -f
