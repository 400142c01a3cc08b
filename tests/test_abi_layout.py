"""The Python view of the ABI (collector.abi) against what C compilers make of the header.

Two independent C views:
  - gcc at test time: a small program that includes kmod/include/falconet_abi.h and prints
    sizeof/offsetof/sizeof-field of every struct and field of the FNET_CDEF section, the
    event table and fnet_layout_hash() (runs under both backends; skipped without gcc);
  - the built extension (C backend only): cffi's ffi.sizeof/offsetof and the layout hash
    and ABI version compiled into collector._native.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import pytest

from collector import abi, native

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INCLUDE = os.path.join(ROOT, "kmod", "include")


def _program() -> str:
    lines = ['#include <stdio.h>', '#include <stddef.h>', '#include "falconet_abi.h"',
             'int main(void) {']
    for s, fields in abi.STRUCTS.items():
        lines.append(f'printf("S {s} %zu\\n", sizeof(struct {s}));')
        for f in fields:
            name = f[0]
            lines.append(f'printf("F {s} {name} %zu %zu\\n", offsetof(struct {s}, {name}), '
                         f'sizeof(((struct {s} *)0)->{name}));')
    for name in abi.CONST:
        lines.append(f'printf("C {name} %lld\\n", (long long)({name}));')
    lines.append('printf("H %llu\\n", (unsigned long long)fnet_layout_hash());')
    lines.append('#define EV_(name, num, falco, ...) printf("E %d %s %s\\n", num, #name, falco);')
    lines.append('FNET_EVENT_TABLE(EV_)')
    lines.append('return 0; }')
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def gcc_view(tmp_path_factory):
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler")
    d = tmp_path_factory.mktemp("layout")
    src, exe = d / "layout.c", d / "layout"
    src.write_text(_program())
    r = subprocess.run([cc, "-std=gnu11", "-Wall", "-Werror", "-I", INCLUDE, str(src), "-o", str(exe)],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    view = {"S": {}, "F": {}, "C": {}, "E": {}, "H": None}
    for line in out.splitlines():
        kind, *rest = line.split()
        if kind == "S":
            view["S"][rest[0]] = int(rest[1])
        elif kind == "F":
            view["F"][(rest[0], rest[1])] = (int(rest[2]), int(rest[3]))
        elif kind == "C":
            view["C"][rest[0]] = int(rest[1])
        elif kind == "E":
            view["E"][int(rest[0])] = (rest[1], rest[2])
        else:
            view["H"] = int(rest[0])
    return view


def test_struct_layout_matches_gcc(gcc_view):
    assert set(gcc_view["S"]) == set(abi.STRUCTS)
    for s, fields in abi.STRUCTS.items():
        assert abi.SIZEOF[s] == gcc_view["S"][s], s
        assert abi.DTYPES[s].itemsize == gcc_view["S"][s], s
        for name, _ctype, _count, off, size in fields:
            assert (off, size) == gcc_view["F"][(s, name)], (s, name)
            assert abi.DTYPES[s].fields[name][1] == off, (s, name)
            assert abi.DTYPES[s].fields[name][0].itemsize == size, (s, name)


def test_constants_and_events_match_gcc(gcc_view):
    assert abi.CONST == gcc_view["C"]
    assert {e.num: (e.name, e.falco) for e in abi.EVENTS} == gcc_view["E"]


def test_layout_hash_matches_gcc(gcc_view):
    assert abi.LAYOUT_HASH == gcc_view["H"]


def test_layout_hash_detects_a_change():
    """The Python hash really depends on the layout (so the comparisons above can fail)."""
    structs = {k: list(v) for k, v in abi.STRUCTS.items()}
    f = structs["fnet_event_hdr"][1]
    structs["fnet_event_hdr"][1] = (f[0], f[1], f[2], f[3] + 2, f[4])
    assert abi.layout_hash(structs) != abi.LAYOUT_HASH
    sizeof = dict(abi.SIZEOF, fnet_info=abi.SIZEOF["fnet_info"] + 8)
    assert abi.layout_hash(None, sizeof) != abi.LAYOUT_HASH


def test_header_dtype_reads_a_record():
    from collector import records as R
    rec = R.encode("openat", tid=7, pid=5, ts=99, ret=-2, args=(1, 2, 3, 4, 5, 6), vars=("ab", "c"))
    h = np.frombuffer(rec[: abi.HDR_SIZE], abi.HDR_DTYPE)[0]
    assert (h["len"], h["type"], h["ts"], h["tid"], h["pid"], h["ret"]) == (104, 2, 99, 7, 5, -2)
    assert h["arg"].tolist() == [1, 2, 3, 4, 5, 6] and h["vlen"].tolist() == [2, 1, 0, 0, 0, 0]


@pytest.mark.skipif(native.BACKEND != "c", reason="C extension not built / FALCONET_PUREPYTHON")
def test_extension_layout_matches():
    from collector import _native
    ffi, lib = _native.ffi, _native.lib
    for s, fields in abi.STRUCTS.items():
        assert ffi.sizeof(f"struct {s}") == abi.SIZEOF[s], s
        for name, _ctype, _count, off, _size in fields:
            assert ffi.offsetof(f"struct {s}", name) == off, (s, name)
    assert lib.fnet_decode_layout_hash() == abi.LAYOUT_HASH
    assert lib.fnet_decode_abi_version() == abi.ABI_VERSION
    for name, val in abi.CONST.items():
        assert getattr(lib, name) == val, name


def test_ioctl_numbers_match_the_compiler(tmp_path):
    """collector.abi.IOCTL (parsed from the header) == the C preprocessor's _IOR/_IOW values."""
    import shutil
    import subprocess
    from pathlib import Path

    from collector import abi
    if shutil.which("gcc") is None:
        import pytest
        pytest.skip("gcc not installed")
    inc = Path(abi.header_path()).parent
    src = tmp_path / "ioc.c"
    src.write_text('#include <stdio.h>\n#include "falconet_abi.h"\nint main(void){\n' + "".join(
        f'printf("{n} %lu\\n", (unsigned long)FNET_IOC_{n});\n' for n in abi.IOCTL) + "return 0;}\n")
    exe = tmp_path / "ioc"
    subprocess.run(["gcc", "-I", str(inc), "-o", str(exe), str(src)], check=True)
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    got = {k: int(v) for k, v in (line.split() for line in out.splitlines())}
    assert got == abi.IOCTL and len(got) == 6
