"""Confine a forked grading process without Docker (Linux, as root).

Applied in the child after fork, before any submission code runs, in this order:

1. `unshare(CLONE_NEWNET)`: a fresh network namespace with no interfaces up —
   no network at all. PostgreSQL stays reachable through its unix socket, which
   is a file, not a network endpoint.
2. `unshare(CLONE_NEWNS)` and a root file system of its own, built from an
   allow-list: a small tmpfs holding read-only binds of what Python and the
   libraries need (`/usr`, `/lib*`, `/etc`, `/sys`, Python itself, the venv, the
   `autograder` package, the database's socket folder: `SandboxSpec.keep`), five
   device nodes, and `/tmp` — a size-limited tmpfs of its own that is also
   `/var/tmp`, `/dev/shm` and the submission's home, the one place it can write.
   Everything else — the course (hidden tests, gradebook, other submissions), other
   checkouts, home folders, the admin's credentials — does not exist in its view.
   The old root is detached (`pivot_root`), so no path leads back to it.
3. `unshare(CLONE_NEWPID | CLONE_NEWIPC)` and a fork: the submission runs as
   process 1 of a PID namespace of its own, with its own /proc (and its own
   System V and POSIX message-queue IPC, shared with nobody). It can see and
   signal only its own processes — not the grader, not a submission graded beside it — and when
   it ends, the kernel ends every process it started, even one that left its
   process group and session (a daemon waiting for the next submission on the
   same uid). The process the grader forked stays outside, waits, and exits as
   the submission did.
4. resource limits: address space, CPU time, file size, open files, core dumps,
   and processes (a fork bomb stops at the limit).
5. no new privileges (`PR_SET_NO_NEW_PRIVS`: a setuid binary runs with the caller's
   rights), an empty capability bounding set, then an unprivileged uid/gid of its own
   (one per worker slot, so two submissions graded at once never share a uid, cannot
   signal or read each other).
6. the parent-death signal: if the grader dies (kill -9, a crash), its fork server
   exits (no submission holds its "alive" pipe: the executor closes every inherited
   descriptor) and the kernel kills what it had started, down to the submission.
7. a seccomp filter (see seccomp.py): namespaces, mounts, tracing, kernel modules,
   BPF, keyrings and the like fail with EPERM.
8. its own standard output and error (a file in its folder): nothing it writes to
   file descriptors 1 and 2 reaches the grader's output.

What cannot be applied (not root, not Linux) is reported, never fatal: grading
still works and the run's summary lists the protections that were off.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import resource
import select
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

from autograder.grading import seccomp

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
CLONE_NEWPID = 0x20000000
CLONE_NEWIPC = 0x08000000
PR_SET_PDEATHSIG = 1
MS_NOEXEC = 8
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18

MNT_DETACH = 2
PR_SET_NO_NEW_PRIVS = 38
PR_CAPBSET_DROP = 24
# pivot_root(2) has no glibc wrapper: its number per architecture.
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}

# What the submission's root holds besides `SandboxSpec.keep`: the system's programs and
# libraries, its configuration (/etc: the time zone, the loader's cache, SSL roots; files in
# it that are secret are root's and unreadable to the submission's uid anyway) and /sys (read
# by the C library for the number of CPUs). All read-only.
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/sys")
DEVICES = ("null", "zero", "full", "random", "urandom")
_DEVICE_LINKS = {
    "fd": "/proc/self/fd",
    "stdin": "/proc/self/fd/0",
    "stdout": "/proc/self/fd/1",
    "stderr": "/proc/self/fd/2",
    "shm": "/tmp",
}
SANDBOX_UID_BASE = 61000  # + worker slot; no passwd entry is needed to run as a uid

PROTECTIONS = ("network", "filesystem", "processes", "user", "limits", "syscalls")


@dataclass(frozen=True)
class Limits:
    address_space: int = 3 * 1024**3  # bytes; Python + FastAPI + SQLAlchemy need ~1 GiB of it
    cpu_seconds: int = 300
    file_size: int = 64 * 1024**2
    open_files: int = 512
    processes: int = 64
    folder_size: int = 256 * 1024**2  # the submission's /tmp: a RAM disk, never the course's disk


@dataclass
class SandboxSpec:
    workdir: Path
    slot: int = 0
    keep: list[Path] = field(default_factory=list)  # besides SYSTEM_PATHS, bound read-only into its root
    limits: Limits = field(default_factory=Limits)
    isolate: bool = True  # False: limits only (tests of the grader itself)

    @property
    def uid(self) -> int:
        return SANDBOX_UID_BASE + self.slot


@dataclass
class Applied:
    on: list[str] = field(default_factory=list)
    off: dict[str, str] = field(default_factory=dict)  # protection -> why it is off


_LIBC: ctypes.CDLL | None = None


def _libc() -> ctypes.CDLL:
    """libc, loaded once: in the fork server (preload.py), so no submission's process pays
    for `find_library` (it runs `ldconfig -p`, a subprocess, every time it is asked)."""
    global _LIBC
    if _LIBC is None:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
        libc.unshare.argtypes = [ctypes.c_int]
        libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
        libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
        libc.syscall.restype = ctypes.c_long
        _LIBC = libc
    return _LIBC


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(
    libc: ctypes.CDLL, source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None
) -> None:
    def enc(s: str | None) -> bytes | None:
        return s.encode() if s is not None else None

    _check(libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)), f"mount {target}")


def _bind_readonly(libc: ctypes.CDLL, fd_path: str, target: str) -> None:
    _mount(libc, fd_path, target, None, MS_BIND | MS_REC)
    _mount(libc, None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID)


def _allow_listed_root(libc: ctypes.CDLL, spec: SandboxSpec) -> None:
    """Replace this mount namespace's root by one that holds only what the allow-list names
    (see the module's docstring). The new root is a tmpfs mounted over the workdir (a folder
    that is ours to cover); the old root is detached once we stand in the new one."""
    # Open what we bind before covering anything: a bind from /proc/self/fd/N reaches the
    # original even where its path is covered later (a venv inside the workdir's parents).
    sources: dict[str, int] = {}
    for path in [*SYSTEM_PATHS, *map(str, spec.keep)]:
        if os.path.lexists(path) and not os.path.islink(path) and path not in sources:
            sources[path] = os.open(path, os.O_PATH)
    links = {path: os.readlink(path) for path in SYSTEM_PATHS if os.path.islink(path)}  # /bin -> usr/bin
    devices = {name: os.open(f"/dev/{name}", os.O_PATH) for name in DEVICES if os.path.exists(f"/dev/{name}")}
    try:
        _mount(libc, None, "/", None, MS_REC | MS_PRIVATE)
        new_root = str(spec.workdir)
        _mount(libc, "tmpfs", new_root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=4m")
        # Its own folder first: a RAM disk with a size limit, owned by its uid (the course's disk is
        # never written, and what it holds is gone with the submission's last process). A kept path
        # under /tmp (a checkout in /tmp) gets its mount point inside it, made here, as root.
        os.makedirs(f"{new_root}/tmp")
        owner = f",uid={spec.uid},gid={spec.uid}" if os.geteuid() == 0 else ""
        _mount(
            libc,
            "tmpfs",
            f"{new_root}/tmp",
            "tmpfs",
            MS_NOSUID | MS_NODEV,
            f"mode=0700,size={spec.limits.folder_size},nr_inodes=65536{owner}",
        )
        for path, fd in sorted(sources.items(), key=lambda item: item[0].count("/")):
            target = new_root + path
            if os.path.isdir(f"/proc/self/fd/{fd}"):
                os.makedirs(target, exist_ok=True)
            else:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                open(target, "w").close()
            _bind_readonly(libc, f"/proc/self/fd/{fd}", target)
        for path, destination in links.items():
            os.symlink(destination, new_root + path)
        os.makedirs(f"{new_root}/dev", exist_ok=True)
        for name, fd in devices.items():
            open(f"{new_root}/dev/{name}", "w").close()
            _mount(libc, f"/proc/self/fd/{fd}", f"{new_root}/dev/{name}", None, MS_BIND)
        for name, destination in _DEVICE_LINKS.items():
            if not os.path.lexists(f"{new_root}/dev/{name}"):  # (a kept path under /dev/shm: left a folder)
                os.symlink(destination, f"{new_root}/dev/{name}")
        os.makedirs(f"{new_root}/var", exist_ok=True)
        if not os.path.lexists(f"{new_root}/var/tmp"):  # (a kept path under /var/tmp made it a folder)
            os.symlink("/tmp", f"{new_root}/var/tmp")
        os.makedirs(f"{new_root}/proc", exist_ok=True)  # mounted by the PID namespace's process 1
        os.chdir(new_root)
        pivot = _SYS_PIVOT_ROOT.get(os.uname().machine)
        if pivot is None:
            raise OSError(errno.ENOSYS, f"pivot_root: unknown on {os.uname().machine}")
        _check(libc.syscall(pivot, b".", b"."), "pivot_root")
        _check(libc.umount2(b".", MNT_DETACH), "detach the old root")  # stacked under the new one
        os.chdir("/")
        _mount(libc, None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    finally:
        for fd in [*sources.values(), *devices.values()]:
            os.close(fd)


def _drop_privileges_for_good(libc: ctypes.CDLL) -> None:
    """No new privileges through exec (setuid binaries, file capabilities), and no capability
    left in the bounding set: nothing run later can get back what the uid change takes."""
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")
    try:
        with open("/proc/sys/kernel/cap_last_cap") as last:
            last_cap = int(last.read())
    except OSError:
        last_cap = 40
    for cap in range(last_cap + 1):
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)  # EINVAL for a cap this kernel lacks: fine


def _own_stdio() -> None:
    """File descriptors 1 and 2 are the grader's (a terminal, or the JSON `grade-one` prints):
    the submission gets a file of its own in its folder instead."""
    fd = os.open("stdio.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def _set_limits(limits: Limits, root: bool) -> None:
    def cap(kind: int, value: int) -> None:
        _soft, hard = resource.getrlimit(kind)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(kind, (value, value))

    cap(resource.RLIMIT_AS, limits.address_space)
    cap(resource.RLIMIT_CPU, limits.cpu_seconds)
    cap(resource.RLIMIT_FSIZE, limits.file_size)
    cap(resource.RLIMIT_NOFILE, limits.open_files)
    cap(resource.RLIMIT_CORE, 0)
    if root:
        # RLIMIT_NPROC counts every process of the uid: only meaningful once the
        # child runs as a uid of its own (as root, or for the grader's own uid, it
        # would count unrelated processes).
        cap(resource.RLIMIT_NPROC, limits.processes)


def die_with_parent(parent: int) -> None:
    """SIGKILL this process when `parent` (its parent now) ends (Linux; elsewhere nothing)."""
    if sys.platform.startswith("linux"):
        _die_with_parent(_libc(), parent)


def _die_with_parent(libc: ctypes.CDLL, parent: int) -> None:
    """SIGKILL this process when its parent ends; if the parent has already gone, end now.

    The kernel clears the setting when the process changes uid, so it is set after that."""
    _check(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")
    if os.getppid() != parent:
        os._exit(70)


def _namespace_init(libc: ctypes.CDLL) -> tuple[int, str | None]:
    """Fork into a new PID namespace. Returns, in the new process (process 1 of the namespace),
    the read end of a pipe that reports its parent's death, and why /proc could not be its own
    (None when it is); the parent never returns: it waits for the submission and exits as it
    did, so the grader sees one process end one way."""
    _check(libc.unshare(CLONE_NEWPID | CLONE_NEWIPC), "unshare(CLONE_NEWPID | CLONE_NEWIPC)")
    alive_r, alive_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(alive_w)
        # Its own /proc: process ids of this namespace only (we are in a mount namespace of our own).
        try:
            _mount(libc, "proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        except OSError as exc:
            return alive_r, str(exc)
        return alive_r, None
    # The keeper: outside the namespace, holding nothing of the submission's (not its pipe).
    os.close(alive_r)
    try:
        os.closerange(3, alive_w)
        os.closerange(alive_w + 1, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        while True:
            _, status = os.waitpid(pid, 0)
            if os.WIFSIGNALED(status):
                sig = os.WTERMSIG(status)
                signal.signal(sig, signal.SIG_DFL)
                os.kill(os.getpid(), sig)  # end by the same signal: the grader names it
                os._exit(128 + sig)
            if os.WIFEXITED(status):
                os._exit(os.WEXITSTATUS(status))
    finally:
        os._exit(70)


def apply(spec: SandboxSpec, env: dict[str, str] | None = None) -> Applied:
    """Confine the current (freshly forked) process. Never raises for a missing feature.
    `env` becomes the whole environment (see `submission_environment`)."""
    applied = Applied()
    parent = os.getppid()
    linux = sys.platform.startswith("linux")
    root = linux and os.geteuid() == 0
    alive_r = None
    isolated = ("network", "filesystem", "processes", "user", "syscalls")
    if not spec.isolate:
        for name in isolated:
            applied.off[name] = "isolation disabled for this run"
    elif not root:
        reason = "needs root on Linux" if linux else "needs Linux"
        for name in isolated:
            applied.off[name] = reason
    else:
        libc = _libc()
        try:
            _check(libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
            applied.on.append("network")
        except OSError as exc:
            applied.off["network"] = str(exc)
        try:
            _check(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
            _allow_listed_root(libc, spec)
            applied.on.append("filesystem")
        except OSError as exc:
            applied.off["filesystem"] = str(exc)
        if "filesystem" not in applied.on:
            applied.off["processes"] = "needs the filesystem protection (a /proc of its own)"
        else:
            try:
                _die_with_parent(libc, parent)  # the keeper too: it ends with the fork server
                alive_r, no_proc = _namespace_init(libc)
                if no_proc is None:
                    applied.on.append("processes")
                else:  # it cannot signal outside, but sees the host's process list
                    applied.off["processes"] = f"a /proc of its own: {no_proc}"
            except OSError as exc:
                applied.off["processes"] = str(exc)
    try:
        _set_limits(spec.limits, root and spec.isolate)
        applied.on.append("limits")
    except (OSError, ValueError) as exc:
        applied.off["limits"] = str(exc)
    if spec.isolate and root:
        try:
            _drop_privileges_for_good(_libc())
            os.setgroups([])
            os.setgid(spec.uid)
            os.setuid(spec.uid)
            applied.on.append("user")
        except OSError as exc:
            applied.off["user"] = str(exc)
    if linux:
        libc = _libc()
        if alive_r is not None:  # process 1 of its namespace: its parent is the keeper, outside
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if select.select([alive_r], [], [], 0)[0]:  # the keeper ended before that took effect
                os._exit(70)
            os.close(alive_r)
        else:
            try:
                _die_with_parent(libc, parent)
            except OSError:
                pass  # a convenience when not isolated: the pipe still ends an idle process
    workdir = "/tmp" if "filesystem" in applied.on else str(spec.workdir)
    os.chdir(workdir)
    allowed = submission_environment(env or {})
    os.environ.clear()  # the grader's environment (credentials, tokens) is not the submission's
    os.environ.update(allowed)
    os.environ.update(
        HOME=workdir, TMPDIR=workdir, IPYTHONDIR=f"{workdir}/.ipython", MPLCONFIGDIR=f"{workdir}/.matplotlib"
    )
    _own_stdio()
    if spec.isolate and root:
        try:
            seccomp.install()  # last: it denies mount and unshare, which the steps above use
            applied.on.append("syscalls")
        except OSError as exc:
            applied.off["syscalls"] = str(exc)
    return applied


# What a submission's environment holds of the grader's: nothing secret, only what makes
# Python and the C library behave as they do for the learner (the locale, the time zone).
INHERITED_ENVIRONMENT = ("LANG", "LC_ALL", "LC_CTYPE", "TZ")
SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"


def submission_environment(extra: dict[str, str]) -> dict[str, str]:
    """The whole environment a submission gets: an allow-list of the grader's, a fixed PATH
    with this Python's folder first, and the job's own variables (its database URL)."""
    env = {name: os.environ[name] for name in INHERITED_ENVIRONMENT if name in os.environ}
    env["PATH"] = f"{os.path.dirname(sys.executable)}:{SAFE_PATH}"
    env.update(extra)
    return env


def prepare_workdir(path: Path, slot: int) -> None:
    """Create the submission's own folder, owned by its slot's uid (when root)."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    if os.geteuid() == 0:
        uid = SANDBOX_UID_BASE + slot
        os.chown(path, uid, uid)
