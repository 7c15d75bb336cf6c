import threading
from contextlib import asynccontextmanager

import pytest
from fastapi import FastAPI
from sqlalchemy import text

from autograder.checks import Call, Exchange, Probe
from tests.apps.library import User


def test_call_values():
    c = Call.post("/users", json={"email": "a"})
    assert (c.method, c.url, c.kwargs) == ("POST", "/users", {"json": {"email": "a"}})
    assert str(Call("get", "/x")) == "GET /x" == str(Call.get("/x"))
    assert Call.delete("/u/1").method == "DELETE" and Call.put("/u").method == "PUT"
    assert Call.patch("/u").method == "PATCH"


async def test_an_exchange_holds_only_its_own_request(probe_for):
    before = set(threading.enumerate())
    async with probe_for("correct") as probe:
        first = await probe.request(Call.post("/users", json={"email": "a@x"}))
        second = await probe.request("GET", "/users")
    assert isinstance(second, Exchange)
    assert first.status == 201 and not first.failed
    assert [s.kind for s in first.statements] == ["INSERT"]
    assert first.tx_kinds() == ["BEGIN", "COMMIT"]
    assert [s.kind for s in second.statements] == ["SELECT"]
    assert second.tx_kinds() == ["BEGIN", "COMMIT"]  # get_db commits reads too
    assert second.response.json() == ["a@x"]
    assert len(first.sessions) == 1 and first.sessions != second.sessions
    assert first.checked_out == second.checked_out == 0
    assert first.errors == second.errors == [] and first.lazy_loads == []
    assert not set(threading.enumerate()) - before  # the probe leaves no thread of its own running


async def test_counts_see_committed_rows_only(probe_for):
    async with probe_for("correct") as probe:
        async with probe.engine.connect() as conn:
            await conn.execute(User.__table__.insert().values(email="pending@x"))
            assert await probe.count_rows("users") == 0  # not committed yet
            await conn.commit()
        assert await probe.count_rows("users") == 1
        assert await probe.count_rows("users", "email = 'nobody'") == 0


async def test_server_connections_counts_other_backends(probe_for):
    async with probe_for("correct") as probe:
        async with probe.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            held = await probe.server_connections()
        assert held >= 1
        await probe.engine.dispose()
        assert await probe.server_connections() == 0


async def test_an_app_without_an_engine_is_explained():
    @asynccontextmanager
    async def lifespan(app):
        yield

    with pytest.raises(AssertionError, match=r"no `app.state.engine` after startup"):
        async with Probe(FastAPI(lifespan=lifespan)):
            pass


async def test_an_explicit_engine_and_url_are_used(fresh_database):
    from sqlalchemy.ext.asyncio import create_async_engine

    url = fresh_database("prb")
    engine = create_async_engine(url)
    try:
        async with Probe(FastAPI(), engine=engine, db_url=url) as probe:
            assert probe.engine is engine
            assert await probe.server_connections() == 0
    finally:
        await engine.dispose()
