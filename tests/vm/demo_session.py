"""A realistic host session for the demo capture: the event-generator behaviours
(../shared/testdata/event-generator/syscall_actions.yaml) that apply to a host, each done
the way the action does it.  Prints one line per behaviour; check_demo.py verifies them."""
import ctypes
import os
import shutil
import socket
import subprocess
import sys
import time

libc = ctypes.CDLL(None, use_errno=True)
DONE = []


def act(name):
    def deco(fn):
        try:
            fn()
            DONE.append(name)
            print("DEMO", name, flush=True)
        except Exception as e:  # a behaviour that cannot run here is reported, not fatal
            print("DEMO-SKIP", name, repr(e), flush=True)
        time.sleep(0.05)
        return fn
    return deco


def sh(cmd):
    return subprocess.run(cmd, shell=isinstance(cmd, str), capture_output=True)


@act("ReadSensitiveFileUntrusted")
def _():
    sh(["cat", "/etc/shadow"])


@act("DirectoryTraversalMonitoredFileRead")
def _():
    sh(["cat", "/etc/../etc/../etc/shadow"])


@act("CreateHardlinkOverSensitiveFiles")
def _():
    sh(["ln", "/etc/shadow", "/tmp/.falconet-shadow-link"])
    os.unlink("/tmp/.falconet-shadow-link")


@act("CreateSymlinkOverSensitiveFiles")
def _():
    sh(["ln", "-s", "/etc", "/tmp/falconet-etc-link"])
    os.unlink("/tmp/falconet-etc-link")


@act("ClearLogActivities")
def _():
    os.makedirs("/var/log", exist_ok=True)
    with open("/var/log/falconet-demo.log", "w") as f:
        f.write("x\n")
    sh(["truncate", "-s", "0", "/var/log/falconet-demo.log"])


@act("ExecutionFromDevShm")
def _():
    shutil.copy("/bin/true", "/dev/shm/falconet-true")
    os.chmod("/dev/shm/falconet-true", 0o755)
    sh(["/dev/shm/falconet-true"])


@act("FilelessExecutionViaMemfdCreate")
def _():
    fd = os.memfd_create("falconet-fileless", 0)
    with open("/bin/true", "rb") as f:
        os.write(fd, f.read())
    pid = os.fork()
    if pid == 0:
        os.execv(f"/proc/self/fd/{fd}", ["falconet-fileless"])
    os.waitpid(pid, 0)
    os.close(fd)


@act("FindAwsCredentials")
def _():
    # as the action: `find $TMPDIR -maxdepth 1 -iname .aws/credentials`
    sh(["find", "/tmp", "-maxdepth", "1", "-iname", ".aws/credentials"])


@act("SearchPrivateKeysOrPasswords")
def _():
    sh(["grep", "-rl", "BEGIN RSA PRIVATE", "/etc/ssl/certs", "--max-count=1"])
    sh(["find", "/root", "-maxdepth", "2", "-name", "id_rsa"])


@act("LaunchSuspiciousNetworkToolOnHost")
def _():
    # The action runs nmap, which this root filesystem lacks; busybox's nc is a network tool
    # of the same list (Falco's network_tool_binaries) and runs under the name nc.
    os.symlink("/bin/busybox", "/tmp/nc")
    sh(["/tmp/nc", "-h"])
    os.unlink("/tmp/nc")


@act("PtraceAttachedToProcess")
def _():
    child = os.fork()
    if child == 0:
        time.sleep(10)
        os._exit(0)
    libc.ptrace(16, child, None, None)
    os.waitpid(child, 0)
    libc.ptrace(17, child, None, None)
    os.kill(child, 9)
    os.waitpid(child, 0)


@act("PtraceAntiDebugAttempt")
def _():
    child = os.fork()
    if child == 0:
        libc.ptrace(0, 0, None, None)   # PTRACE_TRACEME
        os._exit(0)
    os.waitpid(child, 0)


@act("RemoveBulkDataFromDisk")
def _():
    with open("/tmp/falconet-bulk", "wb") as f:
        f.write(b"0" * 4096)
    sh(["shred", "-u", "/tmp/falconet-bulk"])


@act("RunShellUntrusted")
def _():
    # as the action: a process named httpd spawns `sh -c "ls > /dev/null"` (exec through a
    # symlink named httpd, so the kernel names the process httpd)
    os.symlink(sys.executable, "/tmp/httpd")
    try:
        sh(["/tmp/httpd", "-c", "import subprocess; subprocess.run(['/bin/sh', '-c', 'ls > /dev/null'])"])
    finally:
        os.unlink("/tmp/httpd")


@act("SystemUserInteractive")
def _():
    # as the action: /bin/login run as the system user daemon (uid/gid 1); without root it
    # gives up at once
    subprocess.run(["/bin/login"], user=1, group=1, extra_groups=[], stdin=subprocess.DEVNULL,
                   capture_output=True, timeout=5)


@act("DisallowedSSHConnectionNonStandardPort")
def _():
    # as the action: the ssh client connects to port 443 (`ssh user@example.com -p 443`).
    # The guest has no network: a TEST-NET-1 address on lo stands in for example.com (Falco's
    # outbound macro ignores loopback and RFC 1918 servers), and a listener there accepts the
    # connection and closes it, so ssh's connect succeeds and ssh gives up at once.
    addr = "192.0.2.10"
    sh(["ip", "addr", "add", addr + "/32", "dev", "lo"])
    srv = socket.socket()
    srv.bind((addr, 443))
    srv.listen(1)
    try:
        p = subprocess.Popen(["ssh", "-p", "443", "-o", "BatchMode=yes", "-o", "ConnectTimeout=3",
                              "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                              "user@" + addr], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        srv.settimeout(5)
        try:
            c, _ = srv.accept()
            c.close()
        except OSError:
            pass
        p.wait(timeout=5)
    finally:
        srv.close()
        sh(["ip", "addr", "del", addr + "/32", "dev", "lo"])


@act("WriteBelowEtc")
def _():
    with open("/etc/falconet-demo.conf", "w") as f:
        f.write("demo\n")


@act("WriteBelowBinaryDir")
def _():
    with open("/usr/bin/falconet-demo-bin", "w") as f:
        f.write("#!/bin/sh\n")
    os.unlink("/usr/bin/falconet-demo-bin")


@act("MkdirBinaryDirs")
def _():
    os.mkdir("/usr/bin/falconet-demo-dir")
    os.rmdir("/usr/bin/falconet-demo-dir")


@act("WriteBelowRoot")
def _():
    with open("/falconet-demo-root", "w") as f:
        f.write("demo\n")


@act("SetSetuidOrSetgidBit")
def _():
    shutil.copy("/bin/true", "/tmp/falconet-suid")
    sh(["chmod", "u+s", "/tmp/falconet-suid"])


@act("CreateHiddenFilesOrDirectories")
def _():
    os.mkdir("/tmp/.falconet-hidden")


@act("AddingSshKeysToAuthorizedKeys")
def _():
    os.makedirs("/root/.ssh", exist_ok=True)
    with open("/root/.ssh/authorized_keys", "a") as f:
        f.write("ssh-ed25519 AAAAfalconetdemo demo@falconet\n")


@act("ModifyShellConfigurationFile")
def _():
    with open("/root/.bashrc", "a") as f:
        f.write("# falconet demo\n")


@act("DeleteOrRenameShellHistory")
def _():
    open("/root/.bash_history", "a").close()
    sh(["rm", "-f", "/root/.bash_history"])


@act("ScheduleCronJobs")
def _():
    os.makedirs("/etc/cron.d", exist_ok=True)
    with open("/etc/cron.d/falconet-demo", "w") as f:
        f.write("* * * * * root true\n")


@act("UnexpectedUDPTraffic")
def _():
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.sendto(b"demo", ("127.0.0.1", 5353 + 1000))
    u.close()


@act("UnprivilegedDelegationOfPageFaultsHandlingToAUserspaceProcess")
def _():
    # as the action: a child running as the user daemon calls userfaultfd(0)
    pid = os.fork()
    if pid == 0:
        try:
            os.setgid(1)
            os.setuid(1)
            libc.syscall(323, 0)   # userfaultfd; EPERM when vm.unprivileged_userfaultfd=0
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


@act("ChangeThreadNamespace")
def _():
    fd = os.open("/proc/self/ns/net", os.O_RDONLY)
    libc.setns(fd, 0)
    os.close(fd)


@act("NonSudoSetuid")
def _():
    pid = os.fork()
    if pid == 0:
        os.setuid(65534)
        try:
            os.setuid(0)
        except PermissionError:
            pass
        os._exit(0)
    os.waitpid(pid, 0)


print("DEMO-DONE", len(DONE), flush=True)
sys.exit(0 if len(DONE) >= 12 else 1)
