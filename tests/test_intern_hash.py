"""The intern table's hash against names chosen to collide (ext/intern.c).

A monitored user chooses file names.  If names could be made to share one probe chain,
every lookup of them would walk the whole chain: the decoder would slow down until the rings
overflow and events are dropped.  These names differ only in the top bit of one 8-byte word
and of the next one, the difference a per-word xor-multiply hash carries through unchanged,
whatever its seed."""

from __future__ import annotations

import itertools

import pytest

from collector import native

pytestmark = pytest.mark.skipif(native.BACKEND != "c", reason="C extension not built")


def crafted(pairs: int) -> list[bytes]:
    """2**pairs distinct names of 16 * pairs bytes."""
    out = []
    for flips in itertools.product((0, 0x80), repeat=pairs):
        words = []
        for j, f in enumerate(flips):
            for k in range(2):                  # both words of pair j: byte 7's top bit
                w = bytearray(f"/tmp/{j:02d}{k}".encode())
                w[7] |= f
                words.append(bytes(w))
        out.append(b"".join(words))
    return out


def test_crafted_names_do_not_share_a_probe_chain():
    names = crafted(12)
    assert len(set(names)) == 4096
    t = native.CStringTable()
    ids = [t.intern(n) for n in names]
    assert len(set(ids)) == 4096 and [t.get(i) for i in ids] == names
    assert native._native.lib.fnet_strtab_max_probe(t._t) < 64


def test_tables_differ_in_seed_not_in_ids():
    """Ids are first-seen order in every table, whatever each table's hash seed."""
    names = [f"/proc/{i}/status".encode() for i in range(3000)]
    a, b = native.CStringTable(), native.CStringTable()
    assert [a.intern(n) for n in names] == [b.intern(n) for n in names]
    assert [a.lookup(n) for n in names] == list(range(2, 3002))
