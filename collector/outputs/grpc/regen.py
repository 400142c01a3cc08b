"""Regenerate the committed ``*_pb2.py`` / ``*_pb2_grpc.py`` modules from the .proto files.

Run from anywhere after editing a .proto:  ``python collector/outputs/grpc/regen.py``
(needs ``grpcio-tools``).  protoc writes flat imports (``import schema_pb2``); this script
rewrites them as package-relative imports so the modules load as ``collector.outputs.grpc.*``
without touching ``sys.path``.  The generated code is committed so that running Falconet
needs only ``grpcio`` and ``protobuf``, not the compiler.
"""

from __future__ import annotations

import pathlib
import re
import sys

HERE = pathlib.Path(__file__).resolve().parent
PROTOS = ("schema.proto", "outputs.proto", "version.proto", "falconet.proto")


def main() -> int:
    try:
        import grpc_tools
        from grpc_tools import protoc
    except ImportError:
        print("regen: grpcio-tools is not installed (python3 -m pip install grpcio-tools)",
              file=sys.stderr)
        return 1
    include = pathlib.Path(grpc_tools.__file__).parent / "_proto"
    args = ["protoc", f"-I{HERE}", f"-I{include}", f"--python_out={HERE}",
            f"--pyi_out={HERE}", f"--grpc_python_out={HERE}", *(str(HERE / p) for p in PROTOS)]
    if protoc.main(args) != 0:
        print("regen: protoc failed", file=sys.stderr)
        return 1
    names = "|".join(p.removesuffix(".proto") for p in PROTOS)
    flat = re.compile(rf"^import ({names})_pb2 as ", re.MULTILINE)
    for path in sorted(HERE.glob("*_pb2*.py*")):
        text = path.read_text()
        fixed = flat.sub(r"from . import \1_pb2 as ", text)
        fixed = re.sub(rf"^from ({names})_pb2 import ", r"from .\1_pb2 import ", fixed, flags=re.MULTILINE)
        if fixed != text:
            path.write_text(fixed)
    print(f"regen: generated {len(PROTOS)} protos into {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
