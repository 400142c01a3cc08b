"""Guest-side reader for the benchmark: the C ring reader (ext/ring.c) draining falconet.ko the
way the live collector does, decoding every batch with the C decoder, then discarding it.

    bench_reader.py --out PREFIX [--interest getpid,openat,...] [--watermark BYTES]
                    [--poll-ms MS] [--buf BYTES] [--no-decode] [--wait reader|poll]
                    [--path auto|ring|copy] [--holdback-ms MS]

What a batch costs here is what `falconet run` pays before the rules: wait for data, one call
that walks every CPU's committed records, merges them by timestamp and releases each ring
once, and collector.native's decoder turning them into columns (paths interned): either
where they lie in the rings (Decoder.decode_ring, the live collector's path when the
extension has it) or after fnet_reader_read() copied them into a buffer (--path copy).
Nothing is written.  That is the counterpart of `sysdig -w /dev/null`, which also parses
every event (its state engine) and serializes it before the write is thrown away.

Writes PREFIX.ready once capture has started; on SIGTERM/SIGINT stops capture (STOP ioctl),
drains what is left, and writes PREFIX.stats.json: the module's counters (kernel_events,
kernel_drops_full, ...), what was read and decoded, the reader's reads/waits, the largest
backlog seen in any ring just before a read (max_pending, bytes: a drop needs the ring full),
the longest time from the end of one batch to the next read (max_gap_ms: waiting plus being
scheduled), with --wait poll the longest poll() that ended readable (max_wake_ms) and the
poll() calls that timed out although a ring held a watermark's worth (late_wakeups: a wakeup
the module should have sent, or a reader vCPU that did not run), the longest read+decode of one batch (max_proc_ms), the time spent in read and in
decode, and the reader's CPU time (total, and from START to the end of the drain).
"""
import argparse
import fcntl
import json
import os
import resource
import select
import signal
import sys
import time

from collector import abi, native
from collector.sources.live import IOC_STOP, LiveSource
from collector.state.ring import GONE, RingReader


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--interest", default="")
    ap.add_argument("--watermark", type=int, default=1 << 20)
    ap.add_argument("--poll-ms", type=int, default=100)
    ap.add_argument("--buf", type=int, default=8 << 20)
    ap.add_argument("--no-decode", action="store_true")
    ap.add_argument("--path", choices=("auto", "ring", "copy"), default="auto",
                    help="ring: Decoder.decode_ring() merges and decodes the records where they "
                         "lie in the rings (the live collector's path, when the extension has "
                         "it); copy: RingReader.read() into a buffer, then Decoder.decode(); "
                         "auto: ring if available")
    ap.add_argument("--holdback-ms", type=float, default=20.0,
                    help="idle-CPU holdback of the C reader, as LiveSource sets it")
    ap.add_argument("--wait", choices=("reader", "poll"), default="reader",
                    help="reader: fnet_reader_wait() (returns at once while any ring holds "
                         "data, as LiveSource does); poll: poll() the device, which is readable "
                         "when a ring crosses the watermark or holds data older than the "
                         "module's flush age (50 ms), and read again at once only while a "
                         "read returns at least half a watermark (the reader is behind)")
    a = ap.parse_args()
    if native.BACKEND != "c":
        print("bench_reader: the C extension is not built (collector/_native)", file=sys.stderr)
        return 2
    interest = {abi.BY_NAME[n].num for n in a.interest.split(",")} if a.interest else None
    src = LiveSource(interest=interest)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    src.open()                       # ABI check, snaplen, interest, START
    size = src.info["data_size"]
    wm = max(abi.HDR_SIZE, min(a.watermark, size // 2))
    reader = RingReader.from_device_fd(src.fd, buf_bytes=a.buf, watermark=wm)
    dec = None if a.no_decode else native.Decoder()
    has_ring = dec is not None and hasattr(dec, "decode_ring")
    if a.path == "ring" and not has_ring:
        print("bench_reader: this build has no Decoder.decode_ring", file=sys.stderr)
        return 2
    path = "ring" if (a.path in ("auto", "ring") and has_ring) else ("copy" if dec else "read")
    if hasattr(reader, "set_holdback"):
        reader.set_holdback(int(a.holdback_ms * 1e6))
    rings = src.rings                # the source's own mappings: peek at the positions only
    st = {"records": 0, "bytes": 0, "decoded": 0, "batches": 0, "max_batch": 0,
          "max_pending": 0, "max_gap_ms": 0.0, "read_s": 0.0, "decode_s": 0.0,
          "max_proc_ms": 0.0, "full_reads": 0, "max_wake_ms": 0.0, "late_wakeups": 0,
          "max_late_pending": 0, "ring_bytes": size, "watermark": wm,
          "poll_ms": a.poll_ms, "buf": a.buf, "decode": dec is not None, "wait": a.wait,
          "path": path}
    with open(a.out + ".ready", "w") as f:
        f.write(str(os.getpid()))
    t0 = last = time.monotonic()
    c0 = time.process_time()

    def batch() -> int:
        nonlocal last
        pend = max((r.producer_pos() - r.consumer_pos() for r in rings), default=0)
        st["max_pending"] = max(st["max_pending"], pend)
        st["full_reads"] += pend > size - (64 << 10)     # the ring was (nearly) full
        t = time.monotonic()
        st["max_gap_ms"] = max(st["max_gap_ms"], (t - last) * 1e3)
        if path == "ring":                   # read + decode in one pass, no copy
            b, _, info = dec.decode_ring(reader)
            last = time.monotonic()
            st["decode_s"] += last - t
            if b is None:
                return -1
            st["decoded"] += b.n
            buf = None
            nbytes = info["bytes"]
        else:
            buf, info = reader.read()
            last = time.monotonic()
            st["read_s"] += last - t
            if buf is None:
                return -1
            nbytes = len(buf)
        n = info["records"]
        if n:
            st["records"] += n
            st["bytes"] += nbytes
            st["batches"] += 1
            st["max_batch"] = max(st["max_batch"], n)
            if buf is not None and dec is not None:
                t1 = time.monotonic()
                b, _ = dec.decode(buf)
                st["decoded"] += b.n
                last = time.monotonic()
                st["decode_s"] += last - t1
            st["max_proc_ms"] = max(st["max_proc_ms"], (last - t) * 1e3)
        return n + info["held_back"]

    if a.wait == "reader":
        while not stop:
            if reader.wait(a.poll_ms) == GONE:
                break
            if batch() < 0:
                break
    else:
        p = select.poll()
        p.register(reader.fileno(), select.POLLIN)
        gone = False
        while not stop and not gone:
            t = time.monotonic()
            ev = p.poll(a.poll_ms)
            waited = (time.monotonic() - t) * 1e3
            pend = max((r.producer_pos() - r.consumer_pos() for r in rings), default=0)
            if ev:
                st["max_wake_ms"] = max(st["max_wake_ms"], waited)
            elif pend >= wm:             # slept the whole timeout over a ring at the watermark
                st["late_wakeups"] += 1
                st["max_late_pending"] = max(st["max_late_pending"], pend)
            if any(e & (select.POLLHUP | select.POLLERR | select.POLLNVAL) for _, e in ev):
                break
            while not stop:                  # behind: keep reading until a read is small
                b0 = st["bytes"]
                if batch() < 0:
                    gone = True
                    break
                if st["bytes"] - b0 < wm // 2:
                    break
    fcntl.ioctl(src.fd, IOC_STOP, 0)     # STOP, then drain: everything counted is delivered
    if hasattr(reader, "set_holdback"):
        reader.set_holdback(0)           # nothing is in flight after STOP
    idle, last_records = 0, -1
    while idle < 3:                      # bounded: three reads that move nothing end it
        n = batch()
        if n <= 0:
            break
        idle = 0 if st["records"] != last_records else idle + 1
        last_records = st["records"]
    st["seconds"] = time.monotonic() - t0
    st["loop_cpu_s"] = time.process_time() - c0
    ru = resource.getrusage(resource.RUSAGE_SELF)
    st["cpu_user_s"], st["cpu_sys_s"] = ru.ru_utime, ru.ru_stime
    rst = reader.stats()
    st["reads"], st["waits"] = rst["reads"], rst["waits"]
    reader.close()
    src.close()
    s = src.stats()
    for k in ("kernel_events", "kernel_drops_full", "kernel_drops_fault", "kernel_drops_toolong",
              "kernel_bytes", "per_cpu"):
        st[k] = s[k]
    with open(a.out + ".stats.json", "w") as f:
        json.dump(st, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
