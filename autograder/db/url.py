"""One resolution path for "which PostgreSQL?".

`DATABASE_URL` wins when it is set (docker compose, a CI service, any server);
otherwise the bundled server under the project's state folder is used, started
on demand. Everything in the course asks this module, nothing else reads the env.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from autograder.errors import SetupError
from autograder.paths import project_root

ENV_URL = "DATABASE_URL"
# A workshop learner's database credentials (KEY=VALUE lines, mode 0600), written in their home by
# their hub server (autograder/hub/singleuser.py): read when DATABASE_URL is not set, so a terminal or
# a kernel started without the server's environment still finds the learner's own database.
CREDENTIALS_FILE = ".course-database.env"
ENV_DATA_DIR = "COURSE_DATA_DIR"
ASYNC_DRIVER = "postgresql+asyncpg"


def state_dir() -> Path:
    """Git-ignored folder for local state: the embedded data dir, holders, logs."""
    configured = os.environ.get(ENV_DATA_DIR)
    return Path(configured).absolute() if configured else project_root() / ".course"


def data_dir() -> Path:
    return state_dir() / "pgdata"


def normalize(url: str) -> URL:
    """Accept the URL spellings people paste and return an asyncpg URL.

    `postgres://` (Heroku-style), `postgresql://` and `postgresql+psycopg://` all
    mean the same server; the course talks to it through asyncpg.
    """
    try:
        parsed = make_url(url.strip())
    except ArgumentError:
        raise SetupError(
            f"DATABASE_URL is not a database URL ({url!r}); use the form "
            "postgresql+asyncpg://user:password@host:5432/dbname, or unset it to use the bundled PostgreSQL."
        ) from None
    if parsed.get_backend_name() not in ("postgresql", "postgres"):
        raise SetupError(
            f"DATABASE_URL points at {parsed.get_backend_name()!r}, but this course needs PostgreSQL; "
            "use a postgresql:// URL or unset DATABASE_URL to use the bundled server."
        )
    return parsed.set(drivername=ASYNC_DRIVER)


def credentials_file() -> Path:
    return Path.home() / CREDENTIALS_FILE


def setting(name: str) -> str:
    """`name` from the environment, else from the learner's credentials file (workshops), else ""."""
    value = os.environ.get(name, "").strip()
    if value or os.environ.get(ENV_URL, "").strip():
        return value  # an explicit DATABASE_URL: the file is not this process's
    try:
        lines = credentials_file().read_text().splitlines()
    except (OSError, RuntimeError):  # no file, or no home
        return ""
    for line in lines:
        key, sep, found = line.partition("=")
        if sep and key.strip() == name:
            return found.strip()
    return ""


def configured_url() -> URL | None:
    raw = setting(ENV_URL)
    return normalize(raw) if raw else None


def with_database(url: URL, database: str) -> URL:
    return url.set(database=database)


def render(url: URL) -> str:
    """The URL as a string, password included (for env vars and engines)."""
    return url.render_as_string(hide_password=False)


def redacted(url: URL) -> str:
    """The URL as a person may see it in a message: never the password."""
    return url.render_as_string(hide_password=True)
