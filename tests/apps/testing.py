"""Test suites for the mutation check (the "apps" under check here are test suites).

The library app and its mutants are `autograder.demos.testing` (lesson 09). Each suite is a
folder of files: `write_suite(folder, SUITE)` writes pytest.ini, conftest.py and the tests.

- GOOD: passes the correct app, catches every mutant;
- WEAK: passes everything (status-free smoke tests): catches nothing;
- FALSE_ALARM: expects 200 from POST /authors, so it fails against the correct app;
- BROKEN: a syntax error in the test module (pytest cannot collect it).
"""

from __future__ import annotations

from pathlib import Path

PYTEST_INI = """\
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = session
asyncio_default_test_loop_scope = session
"""

CONFTEST = """\
import os

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import event
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from autograder.demos.testing import get_sessionmaker


@pytest.fixture(scope="session")
async def engine():
    engine = create_async_engine(os.environ["DATABASE_URL"])
    yield engine
    await engine.dispose()


@pytest.fixture
async def connection(engine):
    async with engine.connect() as conn:
        outer = await conn.begin()
        yield conn
        await outer.rollback()


@pytest.fixture
def session_factory(connection):
    return async_sessionmaker(bind=connection, join_transaction_mode="create_savepoint",
                              expire_on_commit=False)


@pytest.fixture
async def session(session_factory):
    async with session_factory() as session:
        yield session


@pytest.fixture
async def client(app, session_factory):
    app.dependency_overrides[get_sessionmaker] = lambda: session_factory
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


@pytest.fixture
def statements(connection):
    seen = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if not statement.lstrip().upper().startswith(("SAVEPOINT", "RELEASE", "ROLLBACK")):
            seen.append(statement)

    event.listen(connection.sync_connection, "before_cursor_execute", record)
    yield seen
    event.remove(connection.sync_connection, "before_cursor_execute", record)
"""

GOOD = """\
import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select

from autograder.demos.testing import Author, Book


async def test_create_author_201_and_readable(client):
    response = await client.post("/authors", json={"name": "Ada"})
    assert response.status_code == 201
    author_id = response.json()["id"]
    again = await client.get(f"/authors/{author_id}")
    assert again.status_code == 200 and again.json()["name"] == "Ada"


async def test_refused_book_keeps_nothing(client, session):
    response = await client.post("/books", json={"title": "Orphan", "author": "Nobody"})
    assert response.status_code == 404
    assert await session.scalar(select(func.count()).where(Book.title == "Orphan")) == 0


async def test_listing_is_not_n_plus_one(client, session, statements):
    session.add_all([Author(name=f"a{i}", books=[Book(title=f"b{i}")]) for i in range(4)])
    await session.flush()
    statements.clear()
    response = await client.get("/authors")
    assert response.status_code == 200 and len(response.json()) == 4
    assert len(statements) <= 2, statements


async def test_no_connection_leak(app):
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            for _ in range(3):
                assert (await client.get("/authors")).status_code == 200
            assert app.state.engine.pool.checkedout() == 0
"""

WEAK = """\
async def test_listing_answers(client):
    response = await client.get("/authors")
    assert response.status_code == 200
"""

FALSE_ALARM = """\
async def test_create_author(client):
    response = await client.post("/authors", json={"name": "Ada"})
    assert response.status_code == 200
"""

BROKEN = """\
async def test_create_author(client)
    pass
"""


def write_suite(folder: Path, tests: str, conftest: str = CONFTEST, ini: str = PYTEST_INI) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pytest.ini").write_text(ini)
    (folder / "conftest.py").write_text(conftest)
    (folder / "test_library.py").write_text(tests)
    return folder
