"""Confine a forked grading process without Docker (Linux, as root).

Applied in the child after fork, before any submission code runs, in this order:

1. `unshare(CLONE_NEWNET)`: a fresh network namespace with no interfaces up —
   no network at all. PostgreSQL stays reachable through its unix socket, which
   is a file, not a network endpoint.
2. `unshare(CLONE_NEWNS)` and private mounts: every file system is read-only
   (whatever world-writable folders a machine has); the course folder (hidden
   tests in `solutions/`, the gradebook, other submissions) and root's home are
   covered by empty tmpfs; only what the code needs to import (the venv, the
   `autograder` package, Python itself) is bound back read-only. The usual
   world-writable places (/tmp, /var/tmp, /dev/shm) are the submission's own
   work folder, the one place it can write.
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
5. drop to an unprivileged uid/gid of its own (one per worker slot, so two
   submissions graded at once never share a uid, cannot signal or read each other).
6. the parent-death signal: if the grader dies (kill -9, a crash), its fork server
   exits (no submission holds its "alive" pipe: the executor closes every inherited
   descriptor) and the kernel kills what it had started, down to the submission.

What cannot be applied (not root, not Linux) is reported, never fatal: grading
still works and the run's summary lists the protections that were off.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import re
import resource
import select
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

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

WORLD_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")
# Kernel file systems keep their own permissions (a device node stays writable on a read-only
# mount anyway); every other mount is made read-only for the submission.
_KERNEL_MOUNTS = ("/proc", "/sys", "/dev")
_MOUNT_OPTIONS = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC, "noatime": 1024,
                  "nodiratime": 2048, "relatime": 1 << 21, "strictatime": 1 << 24}
_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")  # how /proc/self/mountinfo writes space, tab, newline, backslash
SANDBOX_UID_BASE = 61000  # + worker slot; no passwd entry is needed to run as a uid

PROTECTIONS = ("network", "filesystem", "processes", "user", "limits")


@dataclass(frozen=True)
class Limits:
    address_space: int = 3 * 1024**3  # bytes; Python + FastAPI + SQLAlchemy need ~1 GiB of it
    cpu_seconds: int = 300
    file_size: int = 64 * 1024**2
    open_files: int = 512
    processes: int = 64


@dataclass
class SandboxSpec:
    workdir: Path
    slot: int = 0
    hide: list[Path] = field(default_factory=list)  # folders to cover with an empty tmpfs
    keep: list[Path] = field(default_factory=list)  # paths inside hidden folders to bind back read-only
    limits: Limits = field(default_factory=Limits)
    isolate: bool = True  # False: limits only (tests of the grader itself)

    @property
    def uid(self) -> int:
        return SANDBOX_UID_BASE + self.slot


@dataclass
class Applied:
    on: list[str] = field(default_factory=list)
    off: dict[str, str] = field(default_factory=dict)  # protection -> why it is off


_LIBC = None


def _libc():
    """libc, loaded once: in the fork server (preload.py), so no submission's process pays
    for `find_library` (it runs `ldconfig -p`, a subprocess, every time it is asked)."""
    global _LIBC
    if _LIBC is None:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
        libc.unshare.argtypes = [ctypes.c_int]
        libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
        _LIBC = libc
    return _LIBC


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(libc, source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = lambda s: s.encode() if s is not None else None  # noqa: E731
    _check(libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)), f"mount {target}")


def _bind_readonly(libc, fd_path: str, target: str) -> None:
    _mount(libc, fd_path, target, None, MS_BIND | MS_REC)
    _mount(libc, None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID)


def _mount_points() -> list[tuple[str, int]]:
    """(mount point, per-mount flags to keep) for every mount this process sees."""
    points = []
    with open("/proc/self/mountinfo") as info:
        for line in info:
            fields = line.split()
            point = _OCTAL_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), fields[4])  # \040: a space
            flags = 0
            for option in fields[5].split(","):
                flags |= _MOUNT_OPTIONS.get(option, 0)
            points.append((point, flags))
    return points


def _read_only(libc) -> None:
    """Every mount read-only, but the kernel's (see _KERNEL_MOUNTS)."""
    for point, flags in _mount_points():
        if any(point == k or point.startswith(k + "/") for k in _KERNEL_MOUNTS):
            continue
        try:
            _mount(libc, None, point, None, MS_REMOUNT | MS_BIND | MS_RDONLY | flags)
        except OSError as exc:
            # A mount covered by another one is out of reach anyway: its path now leads
            # elsewhere (not a mount point, or gone). Anything else turns the protection off.
            if point == "/" or exc.errno not in (errno.EINVAL, errno.ENOENT):
                raise


def _hide_and_keep(libc, spec: SandboxSpec) -> None:
    """Cover `hide` folders with tmpfs; bind `keep` paths and the workdir back."""
    # Open everything we need *before* covering its parents: a bind mount from
    # /proc/self/fd/N reaches the original folder even once its path is hidden.
    keep_fds = {}
    for path in spec.keep:
        if path.exists():
            keep_fds[path] = os.open(path, os.O_PATH | os.O_DIRECTORY)
    work_fd = os.open(spec.workdir, os.O_PATH | os.O_DIRECTORY)
    try:
        _mount(libc, None, "/", None, MS_REC | MS_PRIVATE)
        _read_only(libc)
        # World-writable places first: anything that lived under them (a checkout in
        # /tmp, another submission's folder) is gone from view with them.
        for place in WORLD_WRITABLE:
            if Path(place).is_dir():
                _mount(libc, f"/proc/self/fd/{work_fd}", place, None, MS_BIND)
                # A bind mount takes its source mount's flags (read-only by now): writable again.
                _mount(libc, None, place, None, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV)
        for folder in sorted(set(spec.hide), key=lambda p: len(p.parts)):
            if folder.is_dir():
                _mount(libc, "tmpfs", str(folder), "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m")
        # Last, what the code needs back — even where it was under a hidden or replaced
        # folder (a venv inside a checkout in /tmp): the mount point is made in the view.
        for path, fd in keep_fds.items():
            path.mkdir(parents=True, exist_ok=True)
            _bind_readonly(libc, f"/proc/self/fd/{fd}", str(path))
    finally:
        for fd in [*keep_fds.values(), work_fd]:
            os.close(fd)


def _set_limits(limits: Limits, root: bool) -> None:
    def cap(kind: int, value: int) -> None:
        soft, hard = resource.getrlimit(kind)
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


def _die_with_parent(libc, parent: int) -> None:
    """SIGKILL this process when its parent ends; if the parent has already gone, end now.

    The kernel clears the setting when the process changes uid, so it is set after that."""
    _check(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")
    if os.getppid() != parent:
        os._exit(70)


def _namespace_init(libc) -> tuple[int, str | None]:
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


def apply(spec: SandboxSpec) -> Applied:
    """Confine the current (freshly forked) process. Never raises for a missing feature."""
    applied = Applied()
    parent = os.getppid()
    linux = sys.platform.startswith("linux")
    root = linux and os.geteuid() == 0
    alive_r = None
    if not spec.isolate:
        for name in ("network", "filesystem", "processes", "user"):
            applied.off[name] = "isolation disabled for this run"
    elif not root:
        reason = "needs root on Linux" if linux else "needs Linux"
        for name in ("network", "filesystem", "processes", "user"):
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
            _hide_and_keep(libc, spec)
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
    os.environ.update(HOME=workdir, TMPDIR=workdir, IPYTHONDIR=f"{workdir}/.ipython",
                      MPLCONFIGDIR=f"{workdir}/.matplotlib")
    return applied


def prepare_workdir(path: Path, slot: int) -> None:
    """Create the submission's own folder, owned by its slot's uid (when root)."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    if os.geteuid() == 0:
        uid = SANDBOX_UID_BASE + slot
        os.chown(path, uid, uid)
