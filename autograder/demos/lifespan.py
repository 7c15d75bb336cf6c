"""Demo machinery for lesson 03 (engine lifecycle), shared with its hidden tests.

- `unreachable_url(url)`: the same user, password and database, at an address
  where nothing listens (127.0.0.1, port 1: refused at once, no waiting);
- `server_connections(url)`: the client backends connected to that database,
  as the server lists them in `pg_stat_activity` (read on a connection of its own);
- `terminate_connections(url)`: end those backends server-side, as a database restart would;
- `in_new_event_loop(fn)`: run `fn()` (a coroutine function) on a brand-new event
  loop in a worker thread, as a test runner that gives each test its own loop does.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg
from sqlalchemy.engine import make_url

from autograder.checks.health import unreachable_url as _unreachable_url
from autograder.db.admin import asyncpg_params

T = TypeVar("T")

__all__ = ["unreachable_url", "server_connections", "Backend", "in_new_event_loop", "terminate_connections"]


def unreachable_url(url: str, password: str | None = None) -> str:
    """`url` with its host and port replaced by 127.0.0.1:1, where no server listens.

    `password` (optional) replaces the URL's password, e.g. to see whether an error shows it.
    The checks' `unreachable_url` with `via="port"`: this lesson teaches ConnectionRefusedError.
    """
    return _unreachable_url(url, password, via="port")


@dataclass(frozen=True)
class Backend:
    pid: int
    state: str
    query: str

    def __str__(self) -> str:
        return f"pid {self.pid}: {self.state}, last query {self.query!r}"


async def server_connections(url: str) -> list[Backend]:
    """Client backends connected to `url`'s database right now (not counting this query's own)."""
    conn = await asyncpg.connect(**asyncpg_params(make_url(url)))
    try:
        rows = await conn.fetch(
            "SELECT pid, coalesce(state, '') AS state, left(query, 60) AS query FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend' ORDER BY backend_start"
        )
    finally:
        await conn.close()
    return [Backend(r["pid"], r["state"], r["query"]) for r in rows]


def in_new_event_loop(fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run `await fn()` on a fresh event loop (in a worker thread) and return its result.

    Exceptions propagate to the caller. Usable from a notebook cell, where a loop
    is already running.
    """
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(fn())).result()


async def terminate_connections(url: str) -> int:
    """End every other client backend of `url`'s database server-side (as a restart or a
    network cut would); return how many were ended."""
    conn = await asyncpg.connect(**asyncpg_params(make_url(url)))
    try:
        return await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend'"
        )
    finally:
        await conn.close()
