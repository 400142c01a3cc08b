"""cffi build script for the extension ``collector._native``.

The cdef is assembled, never restated: the FNET_CDEF section of kmod/include/falconet_abi.h
(the ABI structs and constants), then the ``BEGIN CDEF``/``END CDEF`` section of every
``ext/*.h`` (each C module declares its own entry points).  Every ``ext/*.c`` is compiled.
"""

from __future__ import annotations

import glob
import os
import re

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ABI_DIR = os.path.join(ROOT, "kmod", "include")

# As <linux/types.h> defines them on Linux (64-bit types are (unsigned) long long), so the
# generated code's pointer types match the header's exactly.
TYPEDEFS = """
typedef unsigned char __u8; typedef unsigned short __u16; typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef signed char __s8; typedef short __s16; typedef int __s32; typedef long long __s64;
"""


def _section(path: str, begin: str, end: str) -> str:
    with open(path, encoding="utf-8") as f:
        text = f.read()
    m = re.search(re.escape(begin) + r".*?\*/(.*)" + re.escape(end), text, re.S)
    return m.group(1) if m else ""


def _strip_comments(text: str) -> str:
    return re.sub(r"/\*.*?\*/", "", text, flags=re.S)


def make_ffi() -> FFI:
    ffi = FFI()
    abi_h = os.path.join(ABI_DIR, "falconet_abi.h")
    cdef = TYPEDEFS + _strip_comments(_section(abi_h, "/* BEGIN FNET_CDEF", "/* END FNET_CDEF */"))
    headers = sorted(glob.glob(os.path.join(HERE, "*.h")))
    for h in headers:
        cdef += "\n" + _strip_comments(_section(h, "/* BEGIN CDEF", "/* END CDEF */"))
    ffi.cdef(cdef)
    includes = '#include "falconet_abi.h"\n' + "".join(
        f'#include "{os.path.basename(h)}"\n' for h in headers)
    sources = sorted(glob.glob(os.path.join(HERE, "*.c")))
    ffi.set_source(
        "collector._native", includes,
        sources=[os.path.relpath(s, ROOT) for s in sources],
        include_dirs=[os.path.relpath(ABI_DIR, ROOT), os.path.relpath(HERE, ROOT)],
        extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter",
                            "-fno-strict-aliasing"],
    )
    return ffi


ffibuilder = make_ffi()

if __name__ == "__main__":
    ffibuilder.compile(tmpdir=os.path.join(ROOT, "build", "cffi"), verbose=True)
