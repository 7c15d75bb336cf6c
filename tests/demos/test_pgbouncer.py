"""The throwaway PgBouncer of lesson 07: it really pools in transaction mode, and says why when it cannot run.

`make test` installs Debian's pgbouncer (SYSTEM_TEST_TOOLS), so the first tests run in CI; where
it is missing they skip with that reason rather than pass.
"""

from __future__ import annotations

import os
import shutil
import socket

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from autograder.demos import pgbouncer
from autograder.demos.pgbouncer import pgbouncer_in_front

needs_pgbouncer = pytest.mark.skipif(
    shutil.which("pgbouncer") is None
    and not any(os.path.exists(p) for p in ("/usr/sbin/pgbouncer", "/usr/local/bin/pgbouncer")),
    reason="pgbouncer is not installed (make test installs it with apt-get when run as root)",
)


async def _second_use_on_another_server_connection(url: str, **engine_kw) -> None:
    """A's cached statement runs again while B holds the server connection A prepared it on."""
    engine = create_async_engine(url, **engine_kw)
    a, b = await engine.connect(), await engine.connect()
    try:
        await a.execute(text("SELECT 1 + 1"))
        await a.commit()
        await b.execute(text("SELECT 1"))
        await a.execute(text("SELECT 1 + 1"))
        await a.commit()
    finally:
        await b.close()
        await a.close()
        await engine.dispose()


@needs_pgbouncer
async def test_transaction_pooling_breaks_the_default_engine_and_not_the_safe_one(fresh_database):
    with pgbouncer_in_front(fresh_database("pgb"), pool_mode="transaction", pool_size=2) as bouncer:
        assert bouncer.url is not None, bouncer.reason
        assert bouncer.version.startswith("PgBouncer ")
        with pytest.raises(DBAPIError, match="prepared statement"):
            await _second_use_on_another_server_connection(bouncer.url)
        await _second_use_on_another_server_connection(
            bouncer.url + "?prepared_statement_cache_size=0",
            poolclass=NullPool,
            connect_args={"statement_cache_size": 0},
        )


@needs_pgbouncer
def test_the_bouncer_is_stopped_when_the_block_ends(fresh_database):
    with pgbouncer_in_front(fresh_database("pgb")) as bouncer:
        port = int(bouncer.url.rsplit(":", 1)[1].split("/")[0])
    with pytest.raises(OSError):  # noqa: PT011 - refused or timed out alike: nothing listens there
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()


def test_a_missing_binary_is_one_sentence_and_no_url(monkeypatch, fresh_database):
    monkeypatch.setattr(pgbouncer.shutil, "which", lambda name: None)
    monkeypatch.setattr(pgbouncer.os.path, "exists", lambda path: False)
    with pgbouncer_in_front(fresh_database("pgb")) as bouncer:
        assert bouncer.url is None
        assert "not installed" in bouncer.reason
