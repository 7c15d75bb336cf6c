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


def configured_url() -> URL | None:
    raw = os.environ.get(ENV_URL, "").strip()
    return normalize(raw) if raw else None


def with_database(url: URL, database: str) -> URL:
    return url.set(database=database)


def render(url: URL) -> str:
    """The URL as a string, password included (for env vars and engines)."""
    return url.render_as_string(hide_password=False)


def redacted(url: URL) -> str:
    """The URL as a person may see it in a message: never the password."""
    return url.render_as_string(hide_password=True)
