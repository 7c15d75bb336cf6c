"""A workshop instructor's server: the instructor view (`make instructor`) in the hub, as their own account.

Participants listed as `instructor` get, instead of a learner's server on ~/workspace, JupyterLab with
formgrader and Create Assignment (`jupyter/hub-instructor/`, then `jupyter/instructor/`) on the workshop's
**instructors' course folder** (`course_folder`, `<state dir>-instructors`, e.g. `.course-instructors/`) with
the hub's exchange (COURSE_EXCHANGE): the course as `autograder instructor --course DIR` opens one — the
checkout's nbgrader configuration re-rooted there, its own `submitted/`, `autograded/`, `feedback/`,
`exports/` and gradebook (`.course/gradebook.db`), and copies of the lessons (`solutions/`) and of their
release (`notebooks/`), which the hub adds at every start for lessons not there yet (never replacing an
instructor's edits). Every step works from the instructor's account: formgrader's Generate, Release,
Collect, Autograde and feedback buttons, and `autograder grade --course .` in its terminal.

Access, least privilege: the server runs as the instructor's own account, never as root (formgrader's
Autograde button runs learners' code in a kernel of that server: as root it would own the machine).
The account is put in the group `GROUP` at each spawn (a participant no longer listed as an instructor is
taken out of it at theirs), and the hub (`autograder.hub.lockdown`, at every start) gives that group
read, write and setgid on the instructors' course folder (closed to everyone else) and read on the
checkout's `solutions/` (grading compares a lesson with its source there). Nothing else: not `.git/`,
`tests/`, the checkout's own nbgrader folders and gradebook, the state folder (the hub's secrets, the
PostgreSQL data folders) — the instructors' folder is the state folder's sibling, never inside it.
Their servers run with umask 002, so what one instructor writes the others can change; nbgrader's
exchange is used in its `groupshared` mode, in a course folder of the exchange owned by the group.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from autograder.course.layout import COURSE_ID, ENV_EXCHANGE
from autograder.db import url as urls
from autograder.db.embedded import SERVER_OS_USER
from autograder.errors import SetupError
from autograder.hub import users
from autograder.paths import project_root

GROUP = "course-instructors"
# What an instructors' course folder holds copies of (relative to the checkout; nbgrader's source and release).
COPIED = ("solutions", "notebooks")
# Where `autograder instructor --course DIR` and jupyter/instructor/nbgrader_config.py find the course.
ENV_COURSE_ROOT = "AUTOGRADER_COURSE_ROOT"
UMASK = 0o002
DEFAULT_URL = "/lab"


def course_folder(state_dir: Path) -> Path:
    """The instructors' course folder: `<state dir>-instructors`, beside the state folder (not inside it)."""
    return state_dir.with_name(f"{state_dir.name}-instructors")


def gradebook(state_dir: Path) -> Path:
    return course_folder(state_dir) / ".course" / "gradebook.db"


def config_path() -> str:
    """JUPYTER_CONFIG_PATH of an instructor's server: the hub's additions first, then the instructor view's."""
    jupyter = project_root() / "jupyter"
    return f"{jupyter / 'hub-instructor'}:{jupyter / 'instructor'}"


def scripts_dir() -> Path:
    """`alembic`, `nbgrader`, `autograder` run as `python -m ...` (the learners' Python, first on PATH)."""
    return project_root() / "jupyter" / "hub-instructor" / "bin"


def server_env(python: Path, exchange: Path, state_dir: Path) -> dict[str, str]:
    """What an instructor's server gets on top of their database credentials."""
    course = course_folder(state_dir)
    return {
        ENV_COURSE_ROOT: str(course),
        "JUPYTER_CONFIG_PATH": config_path(),
        ENV_EXCHANGE: str(exchange),
        # nbgrader runs `alembic` by name when formgrader first makes the gradebook: the course's Python
        # first, then scripts that run its modules (the venv's own scripts name an interpreter the account
        # may not be able to run, see autograder.hub.interpreter).
        "PATH": f"{python.parent}:{scripts_dir()}:/usr/local/bin:/usr/bin:/bin",
        # Their own state (gradebook, grading cluster), in the course folder as `--course DIR` has it.
        urls.ENV_DATA_DIR: str(course / ".course"),
    }


# --------------------------------------------------------------------------- accounts (as root)
def _run(cmd: list[str]) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise SetupError(f"`{' '.join(cmd)}` failed ({detail[-1] if detail else f'exit {result.returncode}'}).")


def ensure_group() -> int:
    return users.ensure_group(GROUP)


def set_member(name: str, instructor: bool) -> None:
    """Put `name` in the instructors' group, or take them out of it (a participant no longer an instructor)."""
    ensure_group()
    member = name in grp.getgrnam(GROUP).gr_mem
    if instructor and not member:
        _run(["gpasswd", "--add", name, GROUP])
    elif not instructor and member:
        _run(["gpasswd", "--delete", name, GROUP])


def prepare_exchange(exchange: Path, gid: int, course_id: str = COURSE_ID) -> None:
    """The course's folder in the exchange and all in it, the group's (setgid: what nbgrader makes inside is
    the group's too), so that every instructor can release, collect and release feedback."""
    folder = exchange / course_id
    if not folder.exists():
        folder.mkdir(mode=0o755)
    share_tree(folder, gid)


# --------------------------------------------------------------------------- folders (as root, at hub start)
def _data_folder(path: Path) -> bool:
    """A PostgreSQL data folder (`autograder grade` run by an instructor keeps one): 0700 or the server refuses."""
    return (path / "PG_VERSION").exists()


def _share(path: Path, gid: int, skip_uid: int | None, write: bool = True) -> bool:
    """Give `path` to the group (r, w if `write`, X where someone may execute, setgid on folders with `write`);
    whether it changed."""
    st = path.lstat()
    if stat.S_ISLNK(st.st_mode) or (skip_uid is not None and st.st_uid == skip_uid) or _data_folder(path):
        return False
    mode = stat.S_IMODE(st.st_mode)
    new = mode | stat.S_IRGRP | (stat.S_IWGRP if write else 0)
    if stat.S_ISDIR(st.st_mode):
        new |= stat.S_IXGRP | (stat.S_ISGID if write else 0)
    elif mode & stat.S_IXUSR:
        new |= stat.S_IXGRP
    changed = False
    if st.st_gid != gid:
        os.chown(path, -1, gid, follow_symlinks=False)
        changed = True
    if new != mode:
        os.chmod(path, new)
        changed = True
    return changed


def share_tree(top: Path, gid: int, skip_uid: int | None = None, *, write: bool = True) -> int:
    """`_share` on `top` and everything below it (not into folders of `skip_uid`, the database server's);
    how many entries changed."""
    if not top.exists() and not top.is_symlink():
        return 0
    changed = 0
    stack = [top]
    while stack:
        path = stack.pop()
        changed += _share(path, gid, skip_uid, write)
        st = path.lstat()
        if stat.S_ISDIR(st.st_mode) and not (skip_uid is not None and st.st_uid == skip_uid) and not _data_folder(path):
            with contextlib.suppress(OSError):
                stack.extend(path.iterdir())
    return changed


def share_course(root: Path, state_dir: Path) -> list[str]:
    """The instructors' course folder (made, closed to others, with the lessons it lacks) and the group's
    access to it and to the checkout's `solutions/` (read); one line per change. Never opens anything to others."""
    gid = ensure_group()
    skip_uid = None
    with contextlib.suppress(KeyError):
        skip_uid = pwd.getpwnam(SERVER_OS_USER).pw_uid
    changes = []
    course = course_folder(state_dir)
    if not course.exists():
        course.mkdir(mode=0o2770)
        changes.append(f"mkdir -m 2770 {course}")
    os.chmod(course, stat.S_IMODE(course.stat().st_mode) & ~0o007)
    for rel in COPIED:
        for lesson in sorted(p for p in (root / rel).iterdir() if p.is_dir() and p.name[0] not in "._"):
            target = course / rel / lesson.name
            if not target.exists():
                shutil.copytree(lesson, target, symlinks=True)
                changes.append(f"copied {lesson} -> {target}")
    for path, write in ((course, True), (root / "solutions", False)):
        count = share_tree(path, gid, skip_uid, write=write)
        if count:
            changes.append(f"group {GROUP} {'rw' if write else 'r'}: {path} ({count} entries)")
    return changes


# --------------------------------------------------------------------------- the server (as the instructor)
def main() -> None:
    """`python -m autograder.hub.instructors [jupyterhub-singleuser args]`, started by the hub as the instructor."""
    from autograder.hub.singleuser import write_credentials
    from autograder.lesson import ENV_DB_PREFIX

    os.umask(UMASK)
    values = {key: os.environ[key] for key in (urls.ENV_URL, ENV_DB_PREFIX) if os.environ.get(key)}
    if values:
        write_credentials(urls.credentials_file(), values)
    # nbgrader reads the nbgrader_config.py of the folder it starts in before any other: the course folder's
    # (none) rather than the checkout's, whose course root is the checkout (jupyter/instructor/ re-roots it).
    os.chdir(os.environ.get(ENV_COURSE_ROOT) or project_root())
    os.execv(sys.executable, [sys.executable, "-m", "jupyterhub.singleuser", *sys.argv[1:]])


if __name__ == "__main__":
    main()
