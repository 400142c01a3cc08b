"""Vectorized helpers of the pure .scap walker (``scap_pure``): numbers gathered byte-wise,
C-string lengths, and strings assembled from segments and interned once per distinct value
in order of first occurrence (event, parameter, part), as the C intern table numbers them."""

from __future__ import annotations

import numpy as np

from .scap_convert import PT_SIGNED

# constant bytes that sockaddr strings are assembled from: [fam, 0, 0, 0] at 4 * fam,
# then 16 zero bytes (padding and the NUL between argv[0] and the arguments); a segment
# offset -(i + 1) addresses CONST[i]
CONST = np.zeros(1024 + 16, np.uint8)
CONST[0:1024:4] = np.arange(256, dtype=np.uint8)
ZEROS = 1024


def pick(cond, a_segs, b_segs):
    out = []
    for (ao, al), (bo, bl) in zip(a_segs, b_segs):
        out.append((np.where(cond, ao, bo), np.where(cond, al, bl)))
    return out


def strlen(zpos: np.ndarray, off: np.ndarray, ln: np.ndarray) -> np.ndarray:
    """Bytes before the first NUL in data[off:off+ln] (ln if none)."""
    j = np.searchsorted(zpos, off)
    z = np.where(j < len(zpos), zpos[np.minimum(j, len(zpos) - 1)] if len(zpos) else 0,
                 np.iinfo(np.int64).max)
    return np.minimum(ln, z - off)


def read_num(data, off, ln, pt):
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


class Strings:
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
        src = np.concatenate([data, CONST])
        cbase = len(data)
        offs, lens, owner = [], [], []
        first = 0
        for segs in self.segs:
            k = len(segs[0][0])
            for off, ln in segs:
                # negative offsets address the constant area: -(i + 1) -> CONST[i]
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
