"""Phase 3 of the pure .scap walker (``scap_pure``): enter/exit pairing and the thread ->
pid map over one chunk of events, vectorized per thread with sorts, then the threads' state
carried to the next chunk (one small loop per distinct thread, not per event).

Same semantics as ext/scap.c: a syscall exit takes the arguments it lacks from the thread's
pending enter event if that is the previous syscall event of the thread and its code is the
exit's minus one; a pid comes from the process list, then from clone/fork/execve exits, and
is forgotten at procexit.  (The C table refuses new threads beyond ``max_threads``; this one
applies the same bound per chunk, so the two can differ only past that bound.)
"""

from __future__ import annotations

import numpy as np

from .scap_convert import F_ENTER, F_EXIT_THREAD, F_PAIR, F_PIDSRC
from .scap_pure_strings import read_num

NO_CODE = 0xFFFF


def thread_pass(self, code, tid, fl, modelled, known, pev, pidx, poff, plen, data, row_of,
             a, v, mask, s_ev, s_tid) -> np.ndarray:
    sp = self.sp
    ne = len(code)
    safe = np.where(known, code, 0)
    flk = np.where(known, fl, 0).astype(np.int64)
    # pids carried by clone/fork/execve exits
    pp = sp.procparam[safe, 0].astype(np.int64)
    src_ev = known & ((flk & F_PIDSRC) != 0) & (pp >= 0)
    psel = np.flatnonzero(src_ev[pev] & (pidx == pp[pev]) & (plen == 8))
    pvals, _ok = read_num(data, poff[psel], plen[psel], np.full(len(psel), 4))
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
            if st is None and len(self.threads) >= self.max_threads:
                self.cnt["threads_full"] += 1       # bounded memory: the thread stays unknown
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
