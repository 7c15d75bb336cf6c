"""Helpers for grading tests that watch a file a submission keeps writing."""

from __future__ import annotations

import time
from pathlib import Path


def grows(path: Path, seconds: float = 0.3) -> bool:
    """Whether the file gets longer within `seconds`."""
    before = path.stat().st_size
    time.sleep(seconds)
    return path.stat().st_size != before


def stops_growing(path: Path, within: float = 15.0, quiet: float = 0.3) -> bool:
    """Whether the file stops growing (no change for `quiet` seconds) before `within` seconds
    pass. A writer that was ended may land one last write; one that runs on never goes quiet."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not grows(path, quiet):
            return True
    return False


def processes_of(uid: int) -> list[int]:
    """The host's processes running as `uid` (a sandbox slot's): how a test sees from outside
    whether anything of a submission still runs, now that it writes to no host folder."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue  # ended meanwhile
        real_uid = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("Uid:"))
        if real_uid == uid:
            found.append(int(entry.name))
    return found


def none_left(uid: int, within: float = 15.0) -> bool:
    """Whether every process of `uid` is gone within `within` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not processes_of(uid):
            return True
        time.sleep(0.1)
    return False


def sandboxed_with(path_inside: str) -> dict[int, Path]:
    """Submission processes (running as a sandbox uid) whose own view holds `path_inside`,
    with the host's path to that file (through the process's root): its /tmp is a RAM disk
    only it and the host's root can reach."""
    from autograder.grading.sandbox import SANDBOX_UID_BASE

    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            uid = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("Uid:"))
            if SANDBOX_UID_BASE <= uid < SANDBOX_UID_BASE + 100:
                target = entry / "root" / path_inside.lstrip("/")
                if target.exists():
                    found[int(entry.name)] = target
        except OSError:
            continue
    return found


def all_ended(pids, within: float = 15.0) -> bool:
    """Whether every process in `pids` is gone within `within` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not [pid for pid in pids if Path(f"/proc/{pid}").exists()]:
            return True
        time.sleep(0.1)
    return False
