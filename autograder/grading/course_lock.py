"""One run per course, and what a run killed outright left behind cleared by the next one.

Two runs would write one SQLite gradebook from two processes and sweep each other's
staging: a run holds an flock on `.course/grading.lock` (the kernel releases it if the
process dies). Under that lock every other staging folder is a dead run's.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
from pathlib import Path

from autograder.db.embedded import pid_alive
from autograder.errors import SetupError
from autograder.grading.layout import EXPORTS_DIR, LOCK_FILE, STAGING_DIR, RunPaths, proxy_root

log = logging.getLogger(__name__)


class CourseLock:
    """Held between `acquire()` and `release()`; SetupError if another process holds it."""

    def __init__(self, root: Path):
        self.path = Path(root) / LOCK_FILE
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise SetupError(
                f"Another `autograder grade` (pid {holder}) is grading {self.path.parents[1]}; "
                "wait for it to finish, or stop it (Ctrl-C) and run this again."
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the lock
            self._fd = None


def clear_leftovers(paths: RunPaths) -> None:
    """What a run killed outright (kill -9, a power cut) left behind. Call with the lock held."""
    staging_root = paths.root / STAGING_DIR
    if staging_root.is_dir():
        for folder in staging_root.iterdir():
            if folder != paths.staging:
                log.info("removing the staging folder of a run that died: %s", folder)
                remove_tree(folder)
    # Database sockets of runs that are gone (the lock says no run of this course is alive;
    # a folder whose pid still runs belongs to another course's run).
    for folder in proxy_root(paths.pid).parent.glob("autograder-proxy-*"):
        pid = folder.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not pid_alive(int(pid)):
            remove_tree(folder)
    # Half-written result files (write_json_atomically's temporaries): never read, removed.
    for tmp in (paths.root / EXPORTS_DIR).glob("*/*/.*"):
        if tmp.is_file():
            log.info("removing a half-written result: %s", tmp)
            tmp.unlink(missing_ok=True)
    # A graded notebook being replaced: the old one is put back if the new one never arrived
    # (its result.json is still the old one's), else it is removed.
    for old in (paths.root / "autograded").glob("*/.*.old"):
        final = old.with_name(old.name[1 : -len(".old")])
        if final.exists():
            remove_tree(old)
        else:
            log.info("putting back %s, caught mid-replacement", final)
            old.rename(final)


def remove_tree(folder: Path) -> None:
    """rmtree that says what it could not remove (the next run tries again) instead of raising."""

    def failed(function: object, path: str, exc_info: tuple[type[BaseException], BaseException, object]) -> None:
        log.warning("could not remove %s: %s", path, exc_info[1])

    if folder.exists():
        shutil.rmtree(folder, onerror=failed)
