"""pytest plugin: one PostgreSQL for the whole test session, nothing to set up by hand.

`pytest --nbval` at the repository root must just work: this plugin resolves the
course server once (DATABASE_URL, or the bundled server started on demand) and
exports DATABASE_URL, so every kernel that nbval or nbgrader starts inherits it.
If this session started the bundled server, it stops it at the end — unless
another holder (an open JupyterLab) still uses it.
"""

from __future__ import annotations

import os
import uuid

import pytest

from autograder.db import admin
from autograder.db import url as urls
from autograder.db.embedded import EmbeddedPostgres
from autograder.errors import SetupError

_held: EmbeddedPostgres | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _held
    if hasattr(config, "workerinput"):  # xdist worker: the controller owns the server
        return
    try:
        configured = urls.configured_url()
        if configured is None:
            server = EmbeddedPostgres(urls.data_dir())
            info = server.acquire()
            _held = server
            os.environ[urls.ENV_URL] = info.url("postgres")
        else:
            admin.ping(configured)
            os.environ[urls.ENV_URL] = urls.render(configured)
    except SetupError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_unconfigure(config: pytest.Config) -> None:
    global _held
    if _held is not None:
        _held.release()
        _held = None


@pytest.fixture(scope="session")
def server_url():
    """Admin URL (sqlalchemy.engine.URL) of the course server for this test session."""
    return urls.normalize(os.environ[urls.ENV_URL])


@pytest.fixture
def fresh_database(server_url):
    """Factory: a new empty database per call, dropped after the test. Returns its URL string."""
    created: list[str] = []

    def make(prefix: str = "t") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        created.append(name)
        return urls.render(admin.recreate_database(server_url, name))

    yield make
    for name in created:
        admin.drop_database(server_url, name)
