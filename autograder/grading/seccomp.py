"""A seccomp filter for a submission's process: the system calls a notebook never needs fail.

Built with libseccomp (the library container runtimes use for the same job), called through
ctypes: it resolves each call's number for this machine's architecture and compiles the BPF
program. Denied calls fail with EPERM rather than killing the process, so a submission that
tries one gets an ordinary `PermissionError` it can read, and the grader a normal verdict.

What is denied, and why a notebook never needs it:

* new namespaces and leaving ours (`unshare`, `setns`, `clone`/`clone3` with a namespace
  flag): a user namespace would give the submission a root of its own to attack the kernel
  with, and a new mount namespace a way to rebuild its view of the file system;
* file systems (`mount`, `umount2`, `pivot_root`, `chroot`, the new mount API, `swapon`...);
* other processes' memory and tracing (`ptrace`, `process_vm_readv/writev`, `kcmp`,
  `pidfd_getfd`);
* the kernel's own facilities: modules, kexec, BPF, perf, keyrings, userfaultfd, io_uring
  (a frequent source of kernel bugs), the clock, reboot, accounting, quotas, the kernel log,
  raw I/O ports, file handles that bypass path permissions (`open_by_handle_at`).

`clone3` answers ENOSYS instead: its flags live in memory a filter cannot read, and glibc
falls back to `clone` on ENOSYS, whose flags the filter checks.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
from typing import Literal

log = logging.getLogger(__name__)

DENIED = (
    "unshare",
    "setns",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "swapon",
    "swapoff",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "pidfd_getfd",
    "process_madvise",
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "bpf",
    "perf_event_open",
    "keyctl",
    "add_key",
    "request_key",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "reboot",
    "acct",
    "quotactl",
    "syslog",
    "iopl",
    "ioperm",
    "open_by_handle_at",
    "name_to_handle_at",
    "lookup_dcookie",
    "vhangup",
    "personality",
)
# clone(2)'s first argument on the architectures this runs on (x86_64, aarch64): any of these
# flags asks for a namespace of its own.
NAMESPACE_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000, 0x00000080)

_ALLOW = 0x7FFF0000
_CMP_MASKED_EQ = 7


def _errno_action(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)


class _ArgCmp(ctypes.Structure):
    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


_LIBRARY: ctypes.CDLL | Literal[False] | None = None  # False: looked for, not found


def library() -> ctypes.CDLL | None:
    """libseccomp, loaded once (in the fork server, see preload.py); None where it is missing."""
    global _LIBRARY
    if _LIBRARY is None:
        name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
        try:
            lib = ctypes.CDLL(name, use_errno=True)
        except OSError:
            _LIBRARY = False
        else:
            lib.seccomp_init.restype = ctypes.c_void_p
            lib.seccomp_init.argtypes = [ctypes.c_uint32]
            lib.seccomp_rule_add_array.argtypes = [
                ctypes.c_void_p,
                ctypes.c_uint32,
                ctypes.c_int,
                ctypes.c_uint,
                ctypes.POINTER(_ArgCmp),
            ]
            lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
            lib.seccomp_load.argtypes = [ctypes.c_void_p]
            lib.seccomp_release.argtypes = [ctypes.c_void_p]
            _LIBRARY = lib
    return _LIBRARY or None


def install() -> None:
    """Load the filter into this process (and every process it starts). Raises OSError when it
    cannot: the caller reports the protection as off. Irreversible: call it last."""
    lib = library()
    if lib is None:
        raise OSError(errno.ENOSYS, "libseccomp is not installed")
    ctx = lib.seccomp_init(_ALLOW)
    if not ctx:
        raise OSError(errno.ENOMEM, "seccomp_init failed")
    try:
        deny = _errno_action(errno.EPERM)
        for name in DENIED:
            number = lib.seccomp_syscall_resolve_name(name.encode())
            if number < 0:
                continue  # not a call on this architecture (or this libseccomp's table)
            _checked(lib.seccomp_rule_add_array(ctx, deny, number, 0, None), f"deny {name}")
        clone = lib.seccomp_syscall_resolve_name(b"clone")
        for flag in NAMESPACE_FLAGS:
            comparison = (_ArgCmp * 1)(_ArgCmp(0, _CMP_MASKED_EQ, flag, flag))
            _checked(lib.seccomp_rule_add_array(ctx, deny, clone, 1, comparison), f"deny clone flag {flag:#x}")
        clone3 = lib.seccomp_syscall_resolve_name(b"clone3")
        if clone3 >= 0:
            _checked(lib.seccomp_rule_add_array(ctx, _errno_action(errno.ENOSYS), clone3, 0, None), "clone3")
        _checked(lib.seccomp_load(ctx), "seccomp_load")
    finally:
        lib.seccomp_release(ctx)


def _checked(result: int, what: str) -> None:
    if result < 0:  # libseccomp returns -errno
        raise OSError(-result, f"seccomp: {what}: {errno.errorcode.get(-result, -result)}")
