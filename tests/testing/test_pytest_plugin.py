"""The course's pytest plugin (autograder/testing/pytest_plugin.py), which this very session runs under."""

from __future__ import annotations

import asyncio
import os
import uuid

import asyncpg

from autograder.db import admin
from autograder.db import url as urls

PREFIX = f"plugin_{uuid.uuid4().hex[:8]}"  # this module's own: other workers' databases never match


def _databases(server_url) -> list[str]:
    async def go() -> list[str]:
        conn = await asyncpg.connect(**admin.asyncpg_params(server_url))
        try:
            rows = await conn.fetch("SELECT datname FROM pg_database WHERE datname LIKE $1", f"{PREFIX}%")
            return sorted(r["datname"] for r in rows)
        finally:
            await conn.close()

    return asyncio.run(go())


def test_the_session_exports_database_url_for_kernels(server_url):
    assert os.environ[urls.ENV_URL]  # every kernel nbval or nbgrader starts inherits it
    assert urls.normalize(os.environ[urls.ENV_URL]) == server_url
    assert server_url.drivername == "postgresql+asyncpg"


def test_fresh_database_makes_a_new_empty_database_per_call(fresh_database, server_url):
    first, second = urls.normalize(fresh_database(PREFIX)), urls.normalize(fresh_database(PREFIX))
    assert first.database != second.database
    assert _databases(server_url) == sorted([first.database, second.database])


def test_fresh_database_dropped_what_the_previous_test_made(server_url):
    # Runs after the test above (one file stays in one process, in order): its teardown is done.
    assert _databases(server_url) == []
