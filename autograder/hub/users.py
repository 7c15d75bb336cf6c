"""One account on this machine per participant: their server runs as that user.

Accounts are made on a participant's first spawn (`useradd`), with a private home (0700) and
membership of the group `GROUP`, which marks them as the hub's: the hub never runs a server as
an account it did not make (a participant listed as `debian` would otherwise get the machine
administrator's files).
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import signal
import subprocess
from pathlib import Path

from autograder.errors import SetupError

GROUP = "course-learners"
HOME_BASE = Path("/home")
HOME_MODE = 0o700


def _run(cmd: list[str]) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise SetupError(f"`{' '.join(cmd)}` failed ({detail[-1] if detail else f'exit {result.returncode}'}).")


def ensure_group(group: str = GROUP) -> int:
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        _run(["groupadd", "--system", group])
        return grp.getgrnam(group).gr_gid


def is_ours(name: str, group: str = GROUP) -> bool:
    """Whether the account `name` exists and was made by the hub (a member of `group`)."""
    try:
        entry = pwd.getpwnam(name)
        members = grp.getgrnam(group)
    except KeyError:
        return False
    return name in members.gr_mem or entry.pw_gid == members.gr_gid


def ensure_user(name: str, *, home_base: Path = HOME_BASE, group: str = GROUP) -> pwd.struct_passwd:
    """The participant's account, made if missing; its home exists, is theirs and is private (0700)."""
    ensure_group(group)
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        _run(
            [
                "useradd",
                "--create-home",
                "--home-dir",
                str(home_base / name),
                "--shell",
                "/bin/bash",
                "--groups",
                group,
                "--comment",
                "course workshop participant",
                "--user-group",
                name,
            ]
        )
        entry = pwd.getpwnam(name)
    else:
        if not is_ours(name, group):
            raise SetupError(
                f"The participant {name!r} is an existing account of this machine that the hub did not make "
                f"(not in group {group}); rename the participant in the list."
            )
    home = Path(entry.pw_dir)
    if not home.is_dir():
        home.mkdir(parents=True, mode=HOME_MODE)
        os.chown(home, entry.pw_uid, entry.pw_gid)
    st = home.lstat()
    if st.st_uid != entry.pw_uid:
        raise SetupError(f"The home folder {home} of {name!r} belongs to another user; fix it or remove the account.")
    if st.st_mode & 0o777 != HOME_MODE:
        os.chmod(home, HOME_MODE)
    return entry


def remove_user(name: str, group: str = GROUP) -> None:
    """Delete a hub-made account, its home and its processes (tests and `autograder hub` clean-up)."""
    if not is_ours(name, group):
        return
    uid = pwd.getpwnam(name).pw_uid
    for pid in processes_of(uid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _run(["userdel", "--remove", name])


def processes_of(uid: int) -> list[int]:
    """The pids of the processes running as `uid` (from /proc)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if proc.stat().st_uid == uid:
                    pids.append(int(proc.name))
            except OSError:
                continue
    return pids
