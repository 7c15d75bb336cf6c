"""The seccomp filter (autograder/grading/seccomp.py), installed in a forked child of the test.

tests/grading/test_sandbox.py checks that a graded submission's process runs under it.
"""

from __future__ import annotations

import ctypes
import errno
import os

import pytest

from autograder.grading import seccomp

CLONE_NEWUSER = 0x10000000
CLONE_NEWNS = 0x00020000


def _in_filtered_child(probe: str) -> int:
    """Fork; the child installs the filter, runs `probe`, and exits with what it reports."""
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 99
        try:
            seccomp.install()
            libc = ctypes.CDLL(None, use_errno=True)
            if probe == "unshare":
                code = errno.EPERM if libc.unshare(CLONE_NEWUSER) == -1 and ctypes.get_errno() == errno.EPERM else 1
            elif probe == "unshare_mount":
                code = errno.EPERM if libc.unshare(CLONE_NEWNS) == -1 and ctypes.get_errno() == errno.EPERM else 1
            elif probe == "fork":  # a plain fork (clone without namespace flags) still works
                child = os.fork()
                if child == 0:
                    os._exit(7)
                code = os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])
            elif probe == "ordinary":
                code = 0 if os.getpid() > 0 and os.listdir("/") else 1
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


needs_libseccomp = pytest.mark.skipif(seccomp.library() is None, reason="libseccomp is not installed here")


@needs_libseccomp
def test_a_new_namespace_is_refused_with_eperm():
    assert _in_filtered_child("unshare") == errno.EPERM
    assert _in_filtered_child("unshare_mount") == errno.EPERM


@needs_libseccomp
def test_ordinary_calls_and_a_plain_fork_still_work():
    assert _in_filtered_child("ordinary") == 0
    assert _in_filtered_child("fork") == 7


def test_the_errno_action_carries_the_code():
    assert seccomp._errno_action(errno.EPERM) == 0x00050000 | errno.EPERM
    assert seccomp._errno_action(errno.ENOSYS) & 0xFFFF == errno.ENOSYS


def test_a_libseccomp_failure_is_an_oserror_naming_the_step():
    seccomp._checked(0, "fine")
    with pytest.raises(OSError, match="seccomp: deny bpf: EINVAL") as info:
        seccomp._checked(-errno.EINVAL, "deny bpf")
    assert info.value.errno == errno.EINVAL


def test_library_is_loaded_once():
    assert seccomp.library() is seccomp.library()
