"""The pure Python/numpy twin of ext/scap.c: same input, same rows, same errors.

Used when the C extension is missing or ``FALCONET_PUREPYTHON=1``; the tests run both and
compare them row by row.  Python walks the block and parameter offsets (one small loop per
event: the same checks, in the same order, with the same messages as the C walker); all the
conversion after that is vectorized over the chunk: numbers are gathered byte-wise, strings
are assembled from segments and interned once per distinct value, and enter/exit pairing and
the thread -> pid map are computed per thread with sorts instead of per-event lookups.

String ids are local to the walker and numbered in order of first occurrence (event, then
parameter, then part), exactly as the C intern table numbers them, so both backends hand
ScapSource identical columns.
"""

from __future__ import annotations

import struct

import numpy as np

from .. import abi
from .scap_convert import (
    F_ENTER,
    F_EXIT_THREAD,
    F_FORKX,
    F_GENERIC,
    F_LARGE,
    F_PAIR,
    F_PIDSRC,
    K_ARGS,
    K_BYTES,
    K_CLONEFLAGS,
    K_EXE,
    K_HI32,
    K_INT,
    K_LO32,
    K_OFLAGS,
    K_RET,
    K_SOCKADDR,
    K_STR,
    K_TUPLE_IN,
    K_TUPLE_OUT,
    MAXP,
    NO_SLOT,
    PT_SIGNED,
    cloneflags_to_kernel,
    oflags_to_kernel,
    spec,
)

NEED_MORE, FULL, OTHER_BLOCK, ERROR = 0, 1, 2, 3
EV_BLOCKS = {0x204: (0, 0, 0), 0x8010ABCD: (0, 0, 0), 0x216: (1, 0, 0), 0x221: (1, 0, 1),
             0x208: (0, 1, 0), 0x217: (1, 1, 0), 0x222: (1, 1, 1)}
MAX_NPARAMS = 1024
QUIRK_LEN3 = (280, 286)        # NOTIFICATION_E, INFRASTRUCTURE_EVENT_E: len 3 bytes too big
NO_CODE = 0xFFFF
_U32 = struct.Struct("<I")
_U16 = struct.Struct("<H")
_HDR = struct.Struct("<II")
_EVH = struct.Struct("<QQIH")

# constant bytes that sockaddr strings are assembled from: [fam, 0, 0, 0] at 4 * fam,
# then 16 zero bytes (padding and the NUL between argv[0] and the arguments)
_CONST = np.zeros(1024 + 16, np.uint8)
_CONST[0:1024:4] = np.arange(256, dtype=np.uint8)
_ZEROS = 1024


class _Fail(Exception):
    def __init__(self, offset: int, message: str):
        self.offset = offset
        self.message = message


class PureWalker:
    """Same interface as ``scap.CWalker``."""

    backend = "pure"

    def __init__(self, cols, max_threads: int = 1 << 19, max_event: int = 64 << 20):
        sp = spec()
        self.sp = sp
        self.cols = cols
        self.max_event = max_event
        self.skipped = np.zeros(sp.ntypes + 1, np.uint64)
        self._ids: dict[bytes, int] = {b"": 1}
        self._strs: list[bytes] = [b"", b""]
        # tid -> [pid, pending code, pending mask, a (6 int64), v (6 uint32)]
        self.threads: dict[int, list] = {}
        self.cnt = {"state_only": 0, "bad_params": 0, "threads_full": 0, "paired": 0}
        self._procfork = abi.BY_NAME["procfork"].num
        self._clones = np.array([abi.BY_NAME["clone"].num, abi.BY_NAME["clone3"].num])

    # -- the walker interface --------------------------------------------------------------
    def seed(self, tids: np.ndarray, pids: np.ndarray) -> None:
        for t, p in zip(tids.tolist(), pids.tolist()):
            e = self.threads.get(t)
            if e is None:
                self.threads[t] = [p, NO_CODE, 0, np.zeros(6, np.int64), np.zeros(6, np.uint32)]
            else:
                e[0] = p

    def string_count(self) -> int:
        return len(self._strs)

    def string(self, i: int) -> bytes:
        return self._strs[i]

    def counters(self) -> dict:
        return {**self.cnt, "threads": len(self.threads)}

    def walk(self, buf: bytearray, start: int, end: int, first_num: int, row0: int):
        evs: list[tuple] = []
        cap = self.cols.cap
        status, consumed, need, eoff, msg = NEED_MORE, 0, 0, 0, ""
        try:
            status, consumed, need = self._scan(buf, start, end, cap - 1 - row0, evs)
        except _Fail as f:
            status, eoff, msg = ERROR, f.offset, f.message
            consumed = f.consumed  # type: ignore[attr-defined]
        rows = self._convert(buf, start, evs, first_num, row0)
        return status, consumed, need, len(evs), row0 + rows, eoff, msg

    # -- phase 1: walk blocks and parameter offsets (the only per-event Python) -------------
    def _scan(self, buf: bytearray, start: int, end: int, room: int,
              evs: list) -> tuple[int, int, int]:
        sp = self.sp
        ntypes, fnet, flags, tabn, generic = sp.ntypes, sp.fnet, sp.flags, sp.nparams, sp.generic
        procp = sp.procparam
        n = end - start
        pos = 0
        rows = 0
        while True:
            if n - pos < 8:
                return NEED_MORE, pos, 8
            code, total = _HDR.unpack_from(buf, start + pos)
            kind = EV_BLOCKS.get(code)
            if kind is None:
                return OTHER_BLOCK, pos, 0
            v2, has_flags, large = kind
            hdr = 26 if v2 else 22
            if total < 8 + 2 + (4 if has_flags else 0) + hdr + 4:
                self._fail(pos, pos + 4, f"event block length {total} is smaller than an event "
                           "header")
            if (not large and total - 8 > 65536) or (large and total > self.max_event):
                lim = self.max_event if large else 65544
                what = "large-block" if large else "event-block"
                self._fail(pos, pos + 4, f"event block length {total} exceeds the {what} limit "
                           f"of {lim} bytes")
            if total > n - pos:
                return NEED_MORE, pos, total
            if rows >= room:
                return FULL, pos, 0
            end = pos + total - 4
            trailer = _U32.unpack_from(buf, start + end)[0]
            if trailer != total:
                self._fail(pos, end, f"event block trailer {trailer} does not repeat its length "
                           f"{total}")
            p = pos + 8
            cpu = _U16.unpack_from(buf, start + p)[0]
            p += 2
            state_only = 0
            if has_flags:
                state_only = _U32.unpack_from(buf, start + p)[0] & 1
                p += 4
            ts, tid, elen, etype = _EVH.unpack_from(buf, start + p)
            if elen < hdr or elen > end - p:
                self._fail(pos, p + 16, f"event length {elen} does not fit in its block "
                           f"({end - p} bytes)")
            if etype >= ntypes:
                self.skipped[ntypes] += 1
                evs.append((pos, -1, 0, 0, 0, 0, (), 0, 0, 0, False))
                pos += total
                continue
            fl = int(flags[etype])
            lsz = 4 if fl & F_LARGE else 2
            lfmt = "<%d" + ("I" if lsz == 4 else "H")
            parr = start + p + hdr
            if v2:
                nparams = _U32.unpack_from(buf, start + p + 22)[0]
                if nparams > MAX_NPARAMS or nparams * lsz > elen - hdr:
                    self._fail(pos, p + 22, f"event of type {etype} claims {nparams} parameters, "
                               f"which do not fit in its {elen} bytes")
                lens = struct.unpack_from(lfmt % nparams, buf, parr)
                tot = hdr + nparams * lsz + sum(lens)
                if tot > elen:
                    self._fail(pos, parr - start, f"parameters of an event of type {etype} add "
                               f"up to {tot} bytes, more than its length {elen}")
            else:
                want = elen - 3 if etype in QUIRK_LEN3 and elen >= 3 else elen
                nparams = -1
                for k in range(int(tabn[etype]), -1, -1):
                    if hdr + k * lsz > elen:
                        continue
                    lens = struct.unpack_from(lfmt % k, buf, parr)
                    tot = hdr + k * lsz + sum(lens)
                    if tot == want or tot == elen:
                        nparams = k
                        break
                if nparams < 0:
                    self._fail(pos, p + 16, f"event of type {etype}: no parameter count matches "
                               f"its length {elen}")
            ftype = int(fnet[etype])
            if fl & F_GENERIC and nparams >= 1 and lens[0] == 2:
                sc = _U16.unpack_from(buf, parr + nparams * lsz)[0]
                ftype = int(generic[sc]) if sc < len(generic) else 0
            modelled = ftype != 0 and not state_only
            if state_only and ftype != 0:
                self.cnt["state_only"] += 1
            elif not modelled:
                self.skipped[etype] += 1
            synth = False
            if modelled and fl & F_FORKX and nparams and lens[0] == 8:
                vals = parr + nparams * lsz
                ptid_i = int(procp[etype, 1])
                synth = struct.unpack_from("<q", buf, vals)[0] == 0 and 0 <= ptid_i < min(
                    nparams, MAXP) and lens[ptid_i] == 8
            evs.append((pos, etype, tid, ts, cpu, modelled, lens[:MAXP],
                        parr - start + nparams * lsz, fl, ftype, synth))
            if modelled:
                rows += 1 + synth
            pos += total

    @staticmethod
    def _fail(pos: int, offset: int, message: str):
        f = _Fail(offset, message)
        f.consumed = pos  # type: ignore[attr-defined]
        raise f

    # -- phase 2: vectorized conversion -----------------------------------------------------
    def _convert(self, buf: bytearray, start: int, evs: list, first_num: int, row0: int) -> int:
        sp = self.sp
        ne = len(evs)
        if ne == 0:
            return 0
        code = np.fromiter((e[1] for e in evs), np.int64, ne)
        tid = np.fromiter((e[2] for e in evs), np.uint64, ne).view(np.int64)
        ts = np.fromiter((e[3] for e in evs), np.uint64, ne)
        cpu = np.fromiter((e[4] for e in evs), np.uint16, ne)
        modelled = np.fromiter((bool(e[5]) for e in evs), bool, ne)
        fl = np.fromiter((e[8] for e in evs), np.uint8, ne)
        ftype = np.fromiter((e[9] for e in evs), np.uint16, ne)
        synth = np.fromiter((e[10] for e in evs), bool, ne)
        known = code >= 0
        # parameters: (event, index, offset, length) -- flattened offsets of the walk
        nlen = np.fromiter((len(e[6]) for e in evs), np.int64, ne)
        plen = np.fromiter((x for e in evs for x in e[6]), np.int64, int(nlen.sum()))
        pev = np.repeat(np.arange(ne), nlen)
        first = np.cumsum(nlen) - nlen
        pidx = np.arange(len(plen)) - first[pev]
        base = np.fromiter((e[7] for e in evs), np.int64, ne)
        csum = np.cumsum(plen) - plen
        poff = base[pev] + csum - (csum[first[pev]] if len(plen) else 0)
        last = evs[-1]
        end = last[7] + sum(last[6]) if last[1] >= 0 else last[0] + 64
        data = np.frombuffer(bytes(buf[start:start + max(end, 0) + 64]), np.uint8)
        pcode = code[pev]
        act = sp.action[np.where(pcode >= 0, pcode, 0), np.minimum(pidx, MAXP - 1)]
        kind = (act & 0xFF).astype(np.int64)
        slot = ((act >> 8) & 15).astype(np.int64)
        slot2 = ((act >> 12) & 15).astype(np.int64)
        pt = (act >> 16).astype(np.int64)
        live = modelled[pev] & (plen > 0) & (kind != 0)

        m = int(modelled.sum())
        row_of = np.cumsum(modelled) - 1          # event -> row (valid where modelled)
        ret = np.zeros(m, np.int64)
        a = np.zeros((6, m), np.int64)
        v = np.zeros((6, m), np.uint32)
        mask = np.zeros(m, np.uint32)
        zpos = np.flatnonzero(data == 0)
        occ = _Strings()
        exe_off = np.full(ne, -1, np.int64)
        exe_len = np.zeros(ne, np.int64)
        setv: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []   # (pi, rows, slots, occ)

        numk = (K_RET, K_INT, K_OFLAGS, K_CLONEFLAGS, K_LO32, K_HI32)
        for pi in range(int(pidx.max()) + 1 if len(pidx) else 0):
            at = live & (pidx == pi)
            if not at.any():
                continue
            idx = np.flatnonzero(at)
            k = kind[idx]
            r = row_of[pev[idx]]
            # numbers
            nm = np.isin(k, numk)
            if nm.any():
                j = idx[nm]
                val, ok = _read_num(data, poff[j], plen[j], pt[j])
                self.cnt["bad_params"] += int((~ok).sum())
                j, val, kk, rr = j[ok], val[ok], k[nm][ok], r[nm][ok]
                s = slot[j]
                sel = kk == K_RET
                ret[rr[sel]] = val[sel]
                mask[rr[sel]] |= 1 << 12
                for kd, conv in ((K_INT, None), (K_OFLAGS, oflags_to_kernel),
                                 (K_CLONEFLAGS, cloneflags_to_kernel)):
                    sel = kk == kd
                    if sel.any():
                        x = val[sel] if conv is None else conv(val[sel])
                        a[s[sel], rr[sel]] = x
                        mask[rr[sel]] |= (1 << s[sel]).astype(np.uint32)
                sel = kk == K_LO32
                if sel.any():
                    cur = a[s[sel], rr[sel]]
                    a[s[sel], rr[sel]] = (cur & ~np.int64(0xFFFFFFFF)) | (val[sel] & 0xFFFFFFFF)
                    mask[rr[sel]] |= (1 << s[sel]).astype(np.uint32)
                sel = kk == K_HI32
                if sel.any():
                    cur = a[s[sel], rr[sel]]
                    a[s[sel], rr[sel]] = (cur & 0xFFFFFFFF) | (val[sel].astype(np.uint64) << np.uint64(32)).view(np.int64)
                    mask[rr[sel]] |= (1 << s[sel]).astype(np.uint32)
            # strings
            for kd in (K_STR, K_BYTES, K_EXE, K_ARGS, K_SOCKADDR, K_TUPLE_OUT, K_TUPLE_IN):
                sel = k == kd
                if not sel.any():
                    continue
                j = idx[sel]
                o, ln = poff[j], plen[j]
                if kd == K_EXE:
                    exe_off[pev[j]] = o
                    exe_len[pev[j]] = _strlen(zpos, o, ln)
                    continue
                if kd == K_STR:
                    ids = occ.add(pev[j], pi, 0, [(o, _strlen(zpos, o, ln))])
                elif kd == K_BYTES:
                    ids = occ.add(pev[j], pi, 0, [(o, ln - (data[o + ln - 1] == 0))])
                elif kd == K_ARGS:
                    ids = self._args(occ, data, pev[j], pi, o, ln, exe_off, exe_len)
                elif kd == K_SOCKADDR:
                    j, ids = self._sockaddr(occ, data, zpos, j, pev, pi, o, ln)
                else:
                    self._tuple(occ, data, zpos, j, pev, pi, o, ln, kd, slot, slot2, row_of, setv)
                    continue
                setv.append((pi, row_of[pev[j]], slot[j], ids))
        # PROC_FORK rows before the child's clone exits: their comm is interned after the
        # event's own parameters (part 63)
        procp = sp.procparam[np.where(known, code, 0)].astype(np.int64)
        sev = np.flatnonzero(synth)
        csel = np.flatnonzero(synth[pev] & (pidx == procp[pev, 2]) & (plen > 0))
        comm_ids = occ.add(pev[csel], 63, 0, [(poff[csel], _strlen(zpos, poff[csel], plen[csel]))])
        # intern in order of first occurrence, then apply string slots parameter by parameter
        local = occ.intern(data, self._ids, self._strs)
        for _pi, rr, ss, ids in sorted(setv, key=lambda t: t[0]):
            ids = local[ids]
            v[ss, rr] = ids
            mask[rr] |= (1 << (6 + ss)).astype(np.uint32)

        def param_of(k: int) -> np.ndarray:
            """Parameter procparam[:, k] of the synth events as int64 (8-byte values)."""
            sel = np.flatnonzero(synth[pev] & (pidx == procp[pev, k]) & (plen == 8))
            out = np.full(ne, np.iinfo(np.int64).min, np.int64)
            vals, _ok = _read_num(data, poff[sel], plen[sel], np.full(len(sel), 4))
            out[pev[sel]] = vals
            return out[sev]
        s_ptid, s_cpid = param_of(1), param_of(0)
        pids = self._threads(code, tid, fl, modelled, known, pev, pidx, poff, plen, data,
                             row_of, a, v, mask, s_ev=sev, s_tid=s_ptid)
        pid, s_pid = pids[:m], pids[m:]
        # rows out: each modelled event's row, preceded by its PROC_FORK row if any
        c = self.cols
        em = np.flatnonzero(modelled)
        cnt = 1 + synth[em].astype(np.int64)
        first_row = row0 + np.cumsum(cnt) - cnt
        rows = first_row + synth[em]
        c.num[rows] = first_num + em
        c.ts[rows] = ts[em]
        c.cpu[rows] = cpu[em]
        c.tid[rows] = tid[em]
        c.pid[rows] = np.where(pid > 0, pid, tid[em])     # never seen: pid = tid (libsinsp)
        c.type[rows] = ftype[em]
        c.flags[rows] = 0
        c.ret[rows] = ret
        c.a[:, rows] = a
        c.v[:, rows] = v
        c.dir[rows] = (sp.flags[code[em]] & F_ENTER) != 0
        c.code[rows] = code[em]
        c.argmask[rows] = mask & (0x3F | 1 << 12)
        if len(sev):
            sr = first_row[synth[em]]
            own = row_of[sev]
            c.num[sr] = first_num + sev
            c.ts[sr] = ts[sev]
            c.cpu[sr] = cpu[sev]
            c.tid[sr] = s_ptid
            c.pid[sr] = np.where(s_pid > 0, s_pid, s_ptid)
            c.type[sr] = self._procfork
            c.flags[sr] = 0
            c.ret[sr] = 0
            c.a[:, sr] = 0
            c.v[:, sr] = 0
            c.a[0, sr] = tid[sev]
            c.a[1, sr] = np.where(s_cpid > 0, s_cpid, tid[sev])
            isclone = np.isin(ftype[sev], self._clones)
            c.a[2, sr] = np.where(isclone, a[0, own], 0)
            c.a[3, sr] = ts[sev].view(np.int64)
            comm = np.zeros(ne, np.uint32)
            comm[pev[csel]] = local[comm_ids]
            c.v[0, sr] = comm[sev]
            c.dir[sr] = 0
            c.code[sr] = code[sev]
            c.argmask[sr] = 0xF | 1 << 12
        return m + len(sev)

    def _args(self, occ, data, ev, pi, o, ln, exe_off, exe_len) -> np.ndarray:
        n = ln - (data[o + ln - 1] == 0)
        eo, el = exe_off[ev], exe_len[ev]
        has = eo >= 0
        segs_exe = [(np.where(has, eo, 0), np.where(has, el, 0)),
                    (np.full(len(o), -(_ZEROS + 1)), np.where(has & (n > 0), 1, 0)),
                    (o, n)]
        return occ.add(ev, pi, 0, segs_exe)

    def _sockaddr(self, occ, data, zpos, j, pev, pi, o, ln):
        fam = data[o].astype(np.int64)
        inet = (fam == 2) & (ln == 7)
        inet6 = (fam == 10) & (ln == 19)
        unix = fam == 1
        other = (fam != 2) & (fam != 10) & ~unix
        ok = inet | inet6 | unix | other
        self.cnt["bad_params"] += int((~ok).sum())
        j, o, ln, fam = j[ok], o[ok], ln[ok], fam[ok]
        inet, inet6, unix, other = inet[ok], inet6[ok], unix[ok], other[ok]
        pathlen = np.where(unix, _strlen(zpos, o + 1, np.maximum(ln - 1, 0)), 0)
        segs = [(-(4 * fam + 1), np.where(unix | other, 4, 2)),           # family (+ port 0)
                (o + np.where(inet, 5, 17), np.where(inet | inet6, 2, 0)),  # port
                (o + 1, np.where(inet, 4, np.where(inet6, 16, pathlen))),   # address / path
                (-(_ZEROS + 1), np.where(inet, 12, 0))]                     # padding to 20
        return j, occ.add(pev[j], pi, 0, segs)

    def _tuple(self, occ, data, zpos, j, pev, pi, o, ln, kd, slot, slot2, row_of, setv):
        fam = data[o].astype(np.int64)
        inet = (fam == 2) & (ln == 13)
        inet6 = (fam == 10) & (ln == 37)
        unix = (fam == 1) & (ln >= 17)
        ok = inet | inet6 | unix
        self.cnt["bad_params"] += int((~ok).sum())
        j, o, ln, fam, inet, unix = j[ok], o[ok], ln[ok], fam[ok], inet[ok], unix[ok]
        ev = pev[j]
        hdr = (-(4 * fam + 1), np.where(unix, 4, 2))
        pad = (-(_ZEROS + 1), np.where(inet, 12, 0))
        src = [hdr, (o + np.where(inet, 5, 17), 2), (o + 1, np.where(inet, 4, 16)), pad]
        dst = [hdr, (o + np.where(inet, 11, 35), 2), (o + np.where(inet, 7, 19),
                                                      np.where(inet, 4, 16)), pad]
        path = [hdr, (o, 0), (o + 17, _strlen(zpos, o + 17, np.maximum(ln - 17, 0))), (o, 0)]
        peer, mine = (dst, src) if kd == K_TUPLE_OUT else (src, dst)
        # C interns the peer first, then the local end (not for unix tuples)
        ids1 = occ.add(ev, pi, 0, _pick(unix, path, peer))
        setv.append((pi, row_of[ev], slot[j], ids1))
        two = ~unix & (slot2[j] != NO_SLOT)
        if two.any():
            ids2 = occ.add(ev[two], pi, 1, [(np.broadcast_to(off, ev.shape)[two],
                                             np.broadcast_to(n, ev.shape)[two]) for off, n in mine])
            setv.append((pi, row_of[ev[two]], slot2[j[two]], ids2))

    # -- phase 3: pairing and pids, per thread ----------------------------------------------
    def _threads(self, code, tid, fl, modelled, known, pev, pidx, poff, plen, data, row_of,
                 a, v, mask, s_ev, s_tid) -> np.ndarray:
        sp = self.sp
        ne = len(code)
        safe = np.where(known, code, 0)
        flk = np.where(known, fl, 0).astype(np.int64)
        # pids carried by clone/fork/execve exits
        pp = sp.procparam[safe, 0].astype(np.int64)
        src_ev = known & ((flk & F_PIDSRC) != 0) & (pp >= 0)
        psel = np.flatnonzero(src_ev[pev] & (pidx == pp[pev]) & (plen == 8))
        pvals, _ok = _read_num(data, poff[psel], plen[psel], np.full(len(psel), 4))
        good = pvals > 0
        pidsrc = np.zeros(ne, bool)
        pidval = np.zeros(ne, np.int64)
        pidsrc[pev[psel][good]] = True
        pidval[pev[psel][good]] = pvals[good]
        pair = known & ((flk & F_PAIR) != 0)
        enter = (flk & F_ENTER) != 0
        exitthr = known & ((flk & F_EXIT_THREAD) != 0)

        # ops of every thread in event order, threads grouped
        ops = np.flatnonzero(pair | exitthr | pidsrc)
        ops = ops[np.argsort(tid[ops], kind="stable")]
        otid = tid[ops]
        starts = np.flatnonzero(np.r_[True, otid[1:] != otid[:-1]]) if len(ops) else \
            np.zeros(0, np.int64)
        gid = np.cumsum(np.r_[False, otid[1:] != otid[:-1]]) if len(ops) else ops
        gtids = otid[starts].tolist()

        # enter/exit pairing: the previous pair-or-procexit op of the same thread
        pr = pair[ops] | exitthr[ops]
        po = ops[pr]
        pg = gid[pr]
        prev = np.r_[-1, po[:-1]]
        prev_same = np.r_[False, pg[1:] == pg[:-1]]
        is_exit = pair[po] & ~enter[po]
        rowmask = np.zeros(ne, np.int64)
        rowmask[modelled] = mask
        # in-chunk pairs
        cand = is_exit & prev_same & modelled[po]
        e_ev, p_ev = po[cand], prev[cand]
        okp = pair[p_ev] & enter[p_ev] & (code[p_ev] == code[e_ev] - 1)
        e_ev, p_ev = e_ev[okp], p_ev[okp]
        pmask = np.where(modelled[p_ev], rowmask[p_ev] & 0xFFF, 0)
        keep = pmask != 0
        e_ev, p_ev, pmask = e_ev[keep], p_ev[keep], pmask[keep]
        self.cnt["paired"] += len(e_ev)
        er, prw = row_of[e_ev], row_of[p_ev]
        miss = pmask & ~rowmask[e_ev]
        for i in range(6):
            sel = (miss & (1 << i)) != 0
            a[i, er[sel]] = a[i, prw[sel]]
            sel = (miss & (1 << (6 + i))) != 0
            v[i, er[sel]] = v[i, prw[sel]]
        mask[er] |= miss.astype(np.uint32)
        # first pair op of a thread in this chunk: pairs with the carried pending enter
        firsts = is_exit & ~prev_same & modelled[po]
        for e in po[firsts].tolist():
            st = self.threads.get(int(tid[e]))        # not updated before the loop below
            if st is None or st[1] != code[e] - 1 or not st[2]:
                continue
            r = row_of[e]
            miss = st[2] & ~int(rowmask[e])
            for i in range(6):
                if miss & (1 << i):
                    a[i, r] = st[3][i]
                if miss & (1 << (6 + i)):
                    v[i, r] = st[4][i]
            mask[r] |= miss
            self.cnt["paired"] += 1

        # pid of each row (and of each PROC_FORK row's parent): the last pid op of the thread
        # up to the event (a pid source at the event itself counts, procexit only after it)
        rows_ev = np.flatnonzero(modelled)
        q_ev = np.r_[rows_ev, s_ev].astype(np.int64)
        q_tid = np.r_[tid[rows_ev], s_tid].astype(np.int64)
        src_e = np.flatnonzero(pidsrc)
        xit_e = np.flatnonzero(exitthr)
        n_o = len(src_e) + len(xit_e)
        all_tid = np.r_[tid[src_e], tid[xit_e], q_tid]
        all_pos = np.r_[2 * src_e, 2 * xit_e + 1, 2 * q_ev]
        isq = np.r_[np.zeros(n_o, bool), np.ones(len(q_ev), bool)]
        val = np.r_[pidval[src_e], np.full(len(xit_e), -1), np.zeros(len(q_ev), np.int64)]
        order = np.lexsort((isq, all_pos, all_tid))
        t_s = all_tid[order]
        idx = np.arange(len(order))
        newg = np.r_[True, t_s[1:] != t_s[:-1]] if len(order) else np.zeros(0, bool)
        gstart = np.maximum.accumulate(np.where(newg, idx, 0)) if len(order) else idx
        lastop = np.maximum.accumulate(np.where(~isq[order], idx, -1)) if len(order) else idx
        found = np.where(lastop >= gstart, val[order][np.maximum(lastop, 0)], -2)
        qpos = order[isq[order]] - n_o
        out = np.empty(len(q_ev), np.int64)
        out[qpos] = found[isq[order]]
        unknown = out == -2
        if unknown.any():
            ut, inv = np.unique(q_tid[unknown], return_inverse=True)
            cp = np.array([(self.threads.get(int(t)) or [-1])[0] for t in ut.tolist()], np.int64)
            out[unknown] = cp[inv.ravel()]
        row_pid = out

        # carry the threads' state to the next chunk
        if len(ops):
            n = len(ops)
            idx = np.arange(n)
            def last(m):
                return np.maximum.reduceat(np.where(m, idx, -1), starts)
            l_pid = last(pidsrc[ops] | exitthr[ops])
            l_pend = last(pair[ops] | exitthr[ops])
            l_exit = last(exitthr[ops])
            l_create = last((pair[ops] & enter[ops]) | pidsrc[ops])
            for g, t in enumerate(gtids):
                st = self.threads.get(t)
                le, lc = int(l_exit[g]), int(l_create[g])
                exists = (st is not None and le < 0) or lc > le
                if not exists:
                    self.threads.pop(t, None)
                    continue
                if st is None or le >= 0:
                    st = [-1, NO_CODE, 0, np.zeros(6, np.int64), np.zeros(6, np.uint32)]
                lp = int(l_pid[g])
                if lp >= 0:
                    e = int(ops[lp])
                    st[0] = int(pidval[e]) if pidsrc[e] else -1
                lq = int(l_pend[g])
                if lq >= 0:
                    e = int(ops[lq])
                    if pair[e] and enter[e]:
                        st[1] = int(code[e])
                        if modelled[e]:
                            r = row_of[e]
                            st[2] = int(rowmask[e]) & 0xFFF
                            st[3] = a[:, r].copy()
                            st[4] = v[:, r].copy()
                        else:
                            st[2] = 0
                            st[3] = np.zeros(6, np.int64)
                            st[4] = np.zeros(6, np.uint32)
                    else:
                        st[1] = NO_CODE
                self.threads[t] = st
        return row_pid


def _pick(cond, a_segs, b_segs):
    out = []
    for (ao, al), (bo, bl) in zip(a_segs, b_segs):
        out.append((np.where(cond, ao, bo), np.where(cond, al, bl)))
    return out


def _strlen(zpos: np.ndarray, off: np.ndarray, ln: np.ndarray) -> np.ndarray:
    """Bytes before the first NUL in data[off:off+ln] (ln if none)."""
    j = np.searchsorted(zpos, off)
    z = np.where(j < len(zpos), zpos[np.minimum(j, len(zpos) - 1)] if len(zpos) else 0,
                 np.iinfo(np.int64).max)
    return np.minimum(ln, z - off)


def _read_num(data, off, ln, pt):
    ok = (ln == 1) | (ln == 2) | (ln == 4) | (ln == 8)
    val = np.zeros(len(off), np.uint64)
    top = len(data) - 1
    for k in range(8):
        b = data[np.minimum(off + k, top)].astype(np.uint64)
        val |= np.where(ln > k, b << np.uint64(8 * k), np.uint64(0))
    sval = val.view(np.int64)
    sg = PT_SIGNED[pt].astype(bool) & (ln < 8) & ok
    bits = (8 * np.where(sg, ln, 8)).astype(np.uint64)
    neg = sg & (((val >> (bits - np.uint64(1))) & np.uint64(1)) == 1)
    sval = np.where(neg, sval - (np.int64(1) << (8 * ln).astype(np.int64)), sval)
    return sval, ok


class _Strings:
    """String occurrences assembled from segments; interned once per distinct value."""

    def __init__(self) -> None:
        self.keys: list[np.ndarray] = []     # (event, param, part) order keys
        self.segs: list[list[tuple[np.ndarray, np.ndarray]]] = []
        self.n = 0

    def add(self, ev: np.ndarray, pi: int, part: int, segs) -> np.ndarray:
        k = len(ev)
        ids = np.arange(self.n, self.n + k)
        self.n += k
        key = (ev.astype(np.int64) * 64 + pi) * 4 + part
        full = []
        for off, ln in segs:
            off = np.broadcast_to(np.asarray(off, np.int64), (k,))
            ln = np.broadcast_to(np.asarray(ln, np.int64), (k,))
            full.append((off, ln))
        self.keys.append(key)
        self.segs.append(full)
        return ids

    def intern(self, data: np.ndarray, table: dict[bytes, int], strs: list[bytes]) -> np.ndarray:
        if self.n == 0:
            return np.zeros(0, np.uint32)
        src = np.concatenate([data, _CONST])
        cbase = len(data)
        offs, lens, owner = [], [], []
        first = 0
        for segs in self.segs:
            k = len(segs[0][0])
            for off, ln in segs:
                # negative offsets address the constant area: -(i + 1) -> _CONST[i]
                offs.append(np.where(off < 0, cbase + (-off - 1), off))
                lens.append(ln)
                owner.append(np.arange(first, first + k))
            first += k
        off = np.concatenate(offs)
        ln = np.concatenate(lens)
        own = np.concatenate(owner)
        order = np.argsort(own, kind="stable")        # segments of each string in order
        off, ln, own = off[order], ln[order], own[order]
        total = np.bincount(own, weights=ln, minlength=self.n).astype(np.int64)
        flat_start = np.cumsum(ln) - ln
        idx = np.repeat(off - flat_start, ln) + np.arange(int(ln.sum()))
        flat = src[idx]
        sstart = np.cumsum(total) - total
        keys = np.concatenate(self.keys)
        local = np.zeros(self.n, np.uint32)
        # distinct values per length; first occurrence decides the id order
        cand: list[tuple[int, bytes, np.ndarray]] = []
        for L in np.unique(total):
            sel = np.flatnonzero(total == L)
            if L == 0:
                cand.append((int(keys[sel].min()), b"", sel))
                continue
            mat = flat[sstart[sel][:, None] + np.arange(L)]
            vv = np.ascontiguousarray(mat).view(np.dtype((np.void, int(L)))).ravel()
            uniq, inv = np.unique(vv, return_inverse=True)
            inv = inv.ravel()
            firstkey = np.full(len(uniq), np.iinfo(np.int64).max)
            np.minimum.at(firstkey, inv, keys[sel])
            by = np.argsort(inv, kind="stable")
            bounds = np.cumsum(np.bincount(inv, minlength=len(uniq)))[:-1]
            for u, members in enumerate(np.split(sel[by], bounds)):
                cand.append((int(firstkey[u]), uniq[u].tobytes(), members))
        cand.sort(key=lambda c: c[0])
        for _k, b, members in cand:
            i = table.get(b)
            if i is None:
                i = len(strs)
                table[b] = i
                strs.append(b)
            local[members] = i
        return local
