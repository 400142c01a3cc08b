"""The scripted workload run in the guest while the live reader captures.

    workload.py OUT.json STORM_BINARY

Every action records what the capture must contain (event type, pid, arguments) in OUT.json;
tests/vm/check.py then looks for each one in the decoded capture.
"""
import ctypes
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
ME = os.getpid()
EXPECT = []
CONTAINERS = []     # execs inside container-like cgroups: pid, expected path and container.id
CG2 = "/sys/fs/cgroup"              # cgroup2, mounted by guest_test.sh
CPUSET_V1 = "/run/falconet-cpuset"  # a cgroup v1 cpuset hierarchy, mounted here
# On PREEMPT_RT the module leaves EXECVE's cgroup and cwd slots empty (the kernfs lock and
# fs->lock sleep there)
RT = "PREEMPT_RT" in os.uname().version
ROOT_CG = "" if RT else "/"
SH_CWD = "" if RT else "/dev"     # the working directory the shell below is started in


def expect(what, type_, who, **fields):
    """`who` is the pid (tgid) that must have produced the record, None for any."""
    EXPECT.append({"what": what, "type": type_, "pid": who, "fields": fields})


def exec_in_cgroup(cgdir: str, argv: list) -> subprocess.Popen:
    """Run argv in a child that moves itself into the cgroup `cgdir` (cgroup.procs) before
    it execs, as a container runtime does, and wait for it."""
    def enter():
        with open(os.path.join(cgdir, "cgroup.procs"), "w") as f:
            f.write("0")
    p = subprocess.Popen(argv, preexec_fn=enter)
    p.wait()
    return p


def cpuset_v1_built() -> bool:
    """Whether this kernel has the cgroup v1 cpuset interface (from its build config)."""
    try:
        config = open(f"/boot/config-{os.uname().release}").read()
    except OSError:
        return True     # unknown: try, and report a failure
    return "# CONFIG_CPUSETS_V1 is not set" not in config


def container_execs() -> None:
    """One exec in a docker-like cgroup of cgroup v2 and one in a kubepods-like cgroup of a
    cgroup v1 cpuset hierarchy: the module must record each cgroup path in EXECVE's `cgroup`
    slot, and userspace derive container.id (first 12 hex digits of the id) from it."""
    # cgroup v2: /system.slice/docker-<64 hex>.scope (systemd cgroup driver)
    cid = secrets.token_hex(32)
    rel = f"/system.slice/docker-{cid}.scope"
    os.makedirs(CG2 + rel)
    try:
        p = exec_in_cgroup(CG2 + rel, ["/bin/sh", "-c", "exit 0"])
    finally:
        os.rmdir(CG2 + rel)
        os.rmdir(CG2 + "/system.slice")
    expect("exec in a docker-like cgroup (v2)", "execve", p.pid, ret=0, filename="/bin/sh",
           cgroup="" if RT else rel)
    CONTAINERS.append({"what": "cgroup v2 docker scope", "pid": p.pid, "cgroup": "" if RT else rel,
                       "container_id": "host" if RT else cid[:12]})

    # cgroup v1, cpuset hierarchy: /kubepods/besteffort/pod<uid>/<64 hex> (cgroupfs driver).
    # cpuset is on the v2 hierarchy until mounted here (nothing enabled it in v2's
    # subtree_control), so the mount moves it to a v1 hierarchy of its own.  Since 6.12 the
    # v1 cpuset interface is optional (CONFIG_CPUSETS_V1, off in Debian's 6.12): skipped there.
    if not cpuset_v1_built():
        return
    cid = secrets.token_hex(32)
    pod = "pod" + secrets.token_hex(4) + "-" + secrets.token_hex(2) + "-" + secrets.token_hex(2)
    rel = f"/kubepods/besteffort/{pod}/{cid}"
    os.makedirs(CPUSET_V1, exist_ok=True)
    subprocess.run(["mount", "-t", "cgroup", "-o", "cpuset", "falconet-cpuset", CPUSET_V1],
                   check=True)
    made = []
    try:
        d = CPUSET_V1
        for part in rel.strip("/").split("/"):
            parent, d = d, d + "/" + part
            os.mkdir(d)
            made.append(d)
            # a v1 cpuset accepts tasks only once it has CPUs and memory nodes
            for k in ("cpuset.cpus", "cpuset.mems"):
                with open(os.path.join(parent, k)) as f:
                    v = f.read().strip()
                with open(os.path.join(d, k), "w") as f:
                    f.write(v)
        p = exec_in_cgroup(d, ["/bin/sh", "-c", "exit 0"])
    finally:
        for d in reversed(made):
            os.rmdir(d)
        subprocess.run(["umount", CPUSET_V1], check=True)
    expect("exec in a kubepods-like cgroup (v1 cpuset)", "execve", p.pid, ret=0,
           filename="/bin/sh", cgroup="" if RT else rel)
    CONTAINERS.append({"what": "cgroup v1 cpuset kubepods", "pid": p.pid,
                       "cgroup": "" if RT else rel, "container_id": "host" if RT else cid[:12]})


def main(out: str, storm: str) -> None:
    # 1. exec of a shell
    p = subprocess.run(["/bin/sh", "-c", "echo falconet-shell"], capture_output=True)
    assert p.stdout == b"falconet-shell\n"
    sh = subprocess.Popen(["/bin/sh", "-c", "exit 3"], cwd="/dev")
    sh.wait()
    # the guest's processes are all in the root cgroup: cgroup "/", container.id "host"
    expect("exec of a shell", "execve", sh.pid, ret=0, filename="/bin/sh",
           args="/bin/sh\0-c\0exit 3", exepath="/usr/bin/dash|/bin/dash|/usr/bin/bash|/bin/bash",
           comm="sh", cgroup=ROOT_CG, cwd=SH_CWD)
    expect("shell exit status", "procexit", sh.pid, ret=3 << 8, last=1)
    expect("fork of the shell", "procfork", ME, child_pid=sh.pid)
    # a failed exec is recorded at sys_exit with the arguments as passed
    try:
        os.execv("/nonexistent/falconet", ["falconet-missing", "x"])
    except OSError:
        pass
    expect("failed execve", "execve", ME, ret=-2, filename="/nonexistent/falconet",
           args="falconet-missing\0x", cgroup=ROOT_CG)
    # execs inside container-like cgroups (v2 and v1); a setup failure is reported by
    # check.py ("containers_error") without stopping the rest of the workload
    try:
        container_execs()
        containers_error = ""
    except Exception as e:  # noqa: BLE001 - any failure is reported, not raised
        containers_error = repr(e)
        print("container execs:", containers_error, flush=True)

    # 2. reading /etc/shadow
    with open("/etc/shadow", "rb") as f:
        fd = f.fileno()
        f.read()
    expect("read /etc/shadow", "openat", ME, ret=fd, dirfd=-100, flags=os.O_RDONLY | os.O_CLOEXEC,
           name="/etc/shadow", fullpath="/etc/shadow")

    # 3. writing under /etc
    with open("/etc/falconet-vm-test.conf", "w") as f:
        fd = f.fileno()
        f.write("written by the falconet VM test\n")
    expect("write under /etc", "openat", ME, ret=fd, dirfd=-100,
           flags=os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode=0o666,
           name="/etc/falconet-vm-test.conf", fullpath="/etc/falconet-vm-test.conf")
    os.mkdir("/etc/falconet.d", 0o750)
    expect("mkdir under /etc", "mkdir", ME, ret=0, mode=0o750, path="/etc/falconet.d")
    os.chmod("/etc/falconet-vm-test.conf", 0o600)
    expect("chmod", "chmod|fchmodat", ME, ret=0, mode=0o600,
           filename="/etc/falconet-vm-test.conf")
    os.rename("/etc/falconet-vm-test.conf", "/etc/falconet.d/moved.conf")
    expect("rename", "rename", ME, ret=0, oldpath="/etc/falconet-vm-test.conf",
           newpath="/etc/falconet.d/moved.conf")
    os.symlink("/etc/shadow", "/etc/falconet.d/shadow-link")
    expect("symlink", "symlink", ME, ret=0, target="/etc/shadow",
           linkpath="/etc/falconet.d/shadow-link")
    os.unlink("/etc/falconet.d/shadow-link")
    expect("unlink", "unlink", ME, ret=0, path="/etc/falconet.d/shadow-link")
    os.unlink("/etc/falconet.d/moved.conf")
    os.rmdir("/etc/falconet.d")
    expect("rmdir", "rmdir", ME, ret=0, path="/etc/falconet.d")

    # 4. connect to a loopback port (and the accept on the other side)
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    cli = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    cli.connect(("127.0.0.1", port))
    lport = cli.getsockname()[1]
    conn, _ = srv.accept()
    # bind records the address as requested (port 0: "any free port")
    expect("bind", "bind", ME, ret=0, fd=srv.fileno(), addr="inet:127.0.0.1:0")
    expect("listen", "listen", ME, ret=0, fd=srv.fileno(), backlog=1)
    expect("connect to loopback", "connect", ME, ret=0, fd=cli.fileno(),
           addr=f"inet:127.0.0.1:{port}", laddr=f"inet:127.0.0.1:{lport}")
    expect("accept", "accept4", ME, ret=conn.fileno(), fd=srv.fileno(),
           addr=f"inet:127.0.0.1:{lport}", laddr=f"inet:127.0.0.1:{port}")
    cli.send(b"ping")
    conn.recv(4)
    for s in (conn, cli, srv):
        s.close()

    # 5. a ptrace
    child = os.fork()
    if child == 0:
        time.sleep(30)
        os._exit(0)
    r = libc.ptrace(16, child, None, None)  # PTRACE_ATTACH
    assert r == 0, ctypes.get_errno()
    os.waitpid(child, 0)
    libc.ptrace(17, child, None, None)  # PTRACE_DETACH
    os.kill(child, signal.SIGKILL)
    os.waitpid(child, 0)
    expect("ptrace attach", "ptrace", ME, ret=0, request=16, pid=child)
    expect("kill", "kill", ME, ret=0, pid=child, sig=9)

    # 6. module load attempts: init_module with a bogus image, finit_module through modprobe
    img = ctypes.create_string_buffer(b"\x7fELF not really a module", 64)
    r = libc.syscall(175, img, 64, b"falconet_param=1")
    err = ctypes.get_errno()
    expect("init_module attempt", "init_module", ME, ret=-err, length=64, uargs="falconet_param=1")
    mp = subprocess.run(["modprobe", "dummy", "numdummies=0"], capture_output=True)
    # kmod passes the options it was given (newer kmod versions repeat command-line options)
    expect("modprobe (finit_module)", "finit_module", None, ret=0 if mp.returncode == 0 else None,
           uargs="numdummies=0|numdummies=0 numdummies=0")
    subprocess.run(["rmmod", "dummy"], capture_output=True)
    expect("rmmod (delete_module)", "delete_module", None, name="dummy")

    # 7. credentials, memfd, chdir, dup2, socketpair
    c = os.fork()
    if c == 0:
        os.setuid(65534)
        os._exit(0)
    os.waitpid(c, 0)
    expect("setuid", "setuid", c, ret=0, uid=65534)
    mfd = os.memfd_create("falconet-memfd", os.MFD_CLOEXEC)
    expect("memfd_create", "memfd_create", ME, ret=mfd, name="falconet-memfd",
           flags=os.MFD_CLOEXEC)
    os.dup2(mfd, 99)
    expect("dup2/dup3", "dup3|dup2", ME, ret=99, oldfd=mfd, newfd=99)
    os.close(99)
    expect("close", "close", ME, ret=0, fd=99)
    os.close(mfd)
    os.chdir("/tmp")
    expect("chdir", "chdir", ME, ret=0, path="/tmp")
    a, b = socket.socketpair()
    expect("socketpair", "socketpair", ME, ret=0, domain=1, fd1=a.fileno(), fd2=b.fileno())
    a.close()
    b.close()

    # 8. 32-bit syscalls (int $0x80) are counted in drops_compat and never misread
    sp = subprocess.Popen([storm, "int80", "1000"], stdout=subprocess.PIPE, text=True)
    sp.communicate()
    expect("ia32 syscalls not misread as native", "getpid|mkdir", sp.pid, count=0)
    compat_pid = sp.pid

    # 9. syscall storm
    n = int(os.environ.get("STORM_N", "100000"))
    sp = subprocess.Popen([storm, "getpid", str(n)], stdout=subprocess.PIPE, text=True)
    print(sp.communicate()[0].strip(), flush=True)
    expect("syscall storm", "getpid", sp.pid, count=n)

    with open(out, "w") as f:
        json.dump({"pid": ME, "expect": EXPECT, "storm_n": n, "compat_n": 1000, "compat_pid": compat_pid,
                   "host_exec_pid": sh.pid, "containers": CONTAINERS,
                   "containers_error": containers_error, "cpuset_v1": cpuset_v1_built(),
                   "preempt_rt": RT},
                  f, indent=1)

if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
