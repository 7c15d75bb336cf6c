"""Keep what learners must not read out of their reach on a workshop machine.

Learners' servers run as their own accounts and need to read the course venv, the `autograder`
package, `jupyter/` and the release `notebooks/` — nothing else of the checkout. Every path here
loses all access for "others" (`chmod o-rwx`): the lessons' sources with their hidden tests
(`solutions/`), git's history of them (`.git/`), the tests (reference apps), the instructor's
nbgrader folders and gradebook, the state folder (databases, passwords, the hub's secrets) and
the instructor's own workspace. The instructor's folders are made, closed, when they do not exist
yet, so that submissions collected and graded during the workshop are never readable. The folders
that lead to a PostgreSQL data folder stay traversable for the server's OS user through their
group (which the server runs with), and each entry inside them is locked too; the hub does all of
this again at every start (an entry made later in the state folder is locked at the next start).

The workshop's instructors (the group `course-instructors`, see `autograder.hub.instructors`) then get
their own course folder beside the state folder (made here, closed to others) and read on `solutions/`;
nothing of `.git/`, `tests/`, the checkout's nbgrader folders, the state folder (the hub's secrets, the
databases) or the operator's workspace.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import stat
from pathlib import Path

from autograder.db.embedded import SERVER_OS_USER
from autograder.hub import instructors
from autograder.paths import project_root

# Where nbgrader and `autograder grade` write learners' submissions, grades and feedback (relative to
# the checkout): made before the workshop if missing, so that they are closed from the start.
INSTRUCTOR_FOLDERS = ("submitted", "autograded", "feedback", "exports")
# Relative to the checkout.
SENSITIVE = (
    "solutions",
    ".git",
    "tests",
    "workspace",
    "submitted",
    "autograded",
    "feedback",
    "exports",
    "source",
    "gradebook.db",
    ".mypy_cache",
    ".pytest_cache",
)


def _lock(path: Path, changes: list[str], *, server_group: int | None = None) -> None:
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        return
    mode = stat.S_IMODE(st.st_mode)
    new = mode & ~0o007
    if server_group is not None and stat.S_ISDIR(st.st_mode):
        if st.st_gid != server_group:
            os.chown(path, -1, server_group)
            changes.append(f"chgrp {SERVER_OS_USER} {path}")
        new |= 0o010  # the server's OS user may pass through (to its data folder)
    if new != mode:
        os.chmod(path, new)
        changes.append(f"chmod {oct(mode)[2:]}->{oct(new)[2:]} {path}")


def lock_down(state_dir: Path, hub_dir: Path, root: Path | None = None) -> list[str]:
    """Apply the locks; returns what changed, one line per change (nothing when all was in place)."""
    root = root or project_root()
    changes: list[str] = []
    server_group = None
    with contextlib.suppress(KeyError):
        server_group = pwd.getpwnam(SERVER_OS_USER).pw_gid
    for rel in INSTRUCTOR_FOLDERS:  # made now, closed: what is collected or graded later lands inside
        folder = root / rel
        if not folder.exists():
            folder.mkdir(mode=0o750)
            changes.append(f"mkdir -m 750 {folder}")
    for rel in SENSITIVE:
        _lock(root / rel, changes)
    for folder in dict.fromkeys([state_dir, hub_dir]):  # (in order, once each)
        _lock(folder, changes, server_group=server_group)
        if folder.is_dir():
            for entry in sorted(folder.iterdir()):
                if entry in (state_dir, hub_dir):
                    continue
                _lock(entry, changes)
    changes.extend(instructors.share_course(root, state_dir))
    return changes
