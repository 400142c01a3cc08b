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
    F_FORKX,
    F_GENERIC,
    F_LARGE,
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
    cloneflags_to_kernel,
    oflags_to_kernel,
    spec,
)
from .scap_pure_strings import ZEROS, Strings, pick, read_num, strlen
from .scap_pure_threads import thread_pass

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
        self.max_threads = max_threads
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
        occ = Strings()
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
                val, ok = read_num(data, poff[j], plen[j], pt[j])
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
                    exe_len[pev[j]] = strlen(zpos, o, ln)
                    continue
                if kd == K_STR:
                    ids = occ.add(pev[j], pi, 0, [(o, strlen(zpos, o, ln))])
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
        comm_ids = occ.add(pev[csel], 63, 0, [(poff[csel], strlen(zpos, poff[csel], plen[csel]))])
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
            vals, _ok = read_num(data, poff[sel], plen[sel], np.full(len(sel), 4))
            out[pev[sel]] = vals
            return out[sev]
        s_ptid, s_cpid = param_of(1), param_of(0)
        pids = thread_pass(self, code, tid, fl, modelled, known, pev, pidx, poff, plen, data,
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
                    (np.full(len(o), -(ZEROS + 1)), np.where(has & (n > 0), 1, 0)),
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
        pathlen = np.where(unix, strlen(zpos, o + 1, np.maximum(ln - 1, 0)), 0)
        segs = [(-(4 * fam + 1), np.where(unix | other, 4, 2)),           # family (+ port 0)
                (o + np.where(inet, 5, 17), np.where(inet | inet6, 2, 0)),  # port
                (o + 1, np.where(inet, 4, np.where(inet6, 16, pathlen))),   # address / path
                (-(ZEROS + 1), np.where(inet, 12, 0))]                     # padding to 20
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
        pad = (-(ZEROS + 1), np.where(inet, 12, 0))
        src = [hdr, (o + np.where(inet, 5, 17), 2), (o + 1, np.where(inet, 4, 16)), pad]
        dst = [hdr, (o + np.where(inet, 11, 35), 2), (o + np.where(inet, 7, 19),
                                                      np.where(inet, 4, 16)), pad]
        path = [hdr, (o, 0), (o + 17, strlen(zpos, o + 17, np.maximum(ln - 17, 0))), (o, 0)]
        peer, mine = (dst, src) if kd == K_TUPLE_OUT else (src, dst)
        # C interns the peer first, then the local end (not for unix tuples)
        ids1 = occ.add(ev, pi, 0, pick(unix, path, peer))
        setv.append((pi, row_of[ev], slot[j], ids1))
        two = ~unix & (slot2[j] != NO_SLOT)
        if two.any():
            ids2 = occ.add(ev[two], pi, 1, [(np.broadcast_to(off, ev.shape)[two],
                                             np.broadcast_to(n, ev.shape)[two]) for off, n in mine])
            setv.append((pi, row_of[ev[two]], slot2[j[two]], ids2))
