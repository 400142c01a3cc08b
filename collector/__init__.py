"""Falconet: runtime security for Linux hosts without eBPF.

Packages:
    collector.abi        the kernel/userspace ABI as seen from Python (read from the header)
    collector.batch      EventBatch and the string intern table: the currency between stages
    collector.native     the C extension or its pure-numpy twin behind one interface
    collector.sources    event sources (synthetic, capture files, live kernel, .scap)
    collector.rules      the rules engine (loader, parser, compiler, evaluator)
    collector.outputs    alert channels (stdout, file, program, http, syslog, grpc)
    collector.ui         the web UI
    collector.cli        the `falconet` command
"""

__version__ = "0.1.0"
