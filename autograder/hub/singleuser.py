"""A workshop learner's server: `python -m autograder.hub.singleuser [jupyterhub-singleuser args]`.

Started by the hub as the learner's own account (LocalProcessSpawner). Before becoming
`jupyterhub-singleuser`, it

1. brings `~/workspace` up to date with the course release (`autograder.workspace.sync_workspace`:
   a first start copies it, later starts add new lessons and never overwrite the learner's edits);
2. writes the learner's database credentials (DATABASE_URL, COURSE_DB_PREFIX from the hub) to
   `~/.course-database.env`, mode 0600, so a kernel or a terminal started without the server's
   environment still reaches the learner's own database (`autograder.db.url.setting`).

Everything runs as the learner: nothing here is written by root into a folder a learner controls.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from autograder import workspace
from autograder.db import url as urls
from autograder.lesson import ENV_DB_PREFIX


def write_credentials(path: Path, values: dict[str, str]) -> None:
    """`KEY=VALUE` lines in `path`, mode 0600 from the start (replaced whole)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write("".join(f"{key}={value}\n" for key, value in values.items()))
    os.replace(tmp, path)


def prepare() -> None:
    folder = workspace.workspace_dir()
    report = workspace.sync_workspace(workspace.release_dir(), folder)
    for line in report.notes():
        print(f"[autograder] {line}", file=sys.stderr, flush=True)
    values = {key: os.environ[key] for key in (urls.ENV_URL, ENV_DB_PREFIX) if os.environ.get(key)}
    if values:
        write_credentials(urls.credentials_file(), values)


def main() -> None:
    prepare()
    # As a module: the course venv's scripts name its interpreter, which a learner may not be able
    # to run (see autograder.hub.interpreter).
    os.execv(sys.executable, [sys.executable, "-m", "jupyterhub.singleuser", *sys.argv[1:]])


if __name__ == "__main__":
    main()
