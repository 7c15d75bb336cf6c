"""Shared by the hub tests: unique participant names, running a command as a learner, cleanup."""

from __future__ import annotations

import os
import secrets
import subprocess

import pytest

from autograder.hub import users

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(
    not ROOT, reason="workshop hub tests make accounts (useradd) and run servers as them: they need root"
)


def unique_name(stem: str) -> str:
    """A participant name no earlier run left behind (`ht` = hub test)."""
    return f"ht{stem}{secrets.token_hex(3)}"


def as_user(name: str, *command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`command` run as the account `name` (runuser: its uid, gid and groups, a clean environment)."""
    return subprocess.run(
        ["runuser", "-u", name, "--", "env", "-i", f"HOME=/home/{name}", "PATH=/usr/bin:/bin", *command],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd="/",
        check=False,
    )


def remove_accounts(*names: str) -> None:
    for name in names:
        users.remove_user(name)
