"""Get a reachable PostgreSQL: the configured one, or the bundled one started on demand."""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url

from autograder.db import url as urls
from autograder.db.embedded import EmbeddedPostgres


def embedded() -> EmbeddedPostgres:
    return EmbeddedPostgres(urls.data_dir())


def server_url(*, hold: bool = False) -> URL:
    """The admin URL of the course server (database `postgres` on the bundled one).

    With `hold=True` the calling process becomes a holder of the bundled server:
    the server is not stopped while it lives. It leaves with `release()`, or by
    exiting (a dead holder no longer counts); the last holder to leave stops it.
    """
    configured = urls.configured_url()
    if configured is not None:
        return configured
    server = embedded()
    info = server.acquire() if hold else server.start()
    return make_url(info.url("postgres"))


def release() -> bool:
    """Leave the bundled server (no-op with DATABASE_URL). True if it was stopped."""
    if urls.configured_url() is not None:
        return False
    return embedded().release()
