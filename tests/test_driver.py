import threading
from contextlib import asynccontextmanager

import pytest
from fastapi import FastAPI

from autograder.driver import AppDriver, StartupFailed
from tests.apps.library import make_app


def tiny_app(fail_startup: bool = False) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app):
        if fail_startup:
            raise RuntimeError("cannot reach the database")
        app.state.started = True
        yield
        app.state.stopped = True

    app = FastAPI(lifespan=lifespan)

    @app.get("/ok")
    async def ok():
        return {"ok": True}

    @app.get("/boom")
    async def boom():
        raise ValueError("kaboom")

    return app


async def test_runs_lifespan_and_requests_without_threads():
    before = threading.active_count()
    app = tiny_app()
    async with AppDriver(app) as drv:
        assert app.state.started
        r = await drv.get("/ok")
        assert r.status_code == 200 and r.json() == {"ok": True}
        assert str(drv.client.base_url) == "http://test"
        assert drv.errors == []
    assert app.state.stopped
    assert threading.active_count() == before


async def test_a_crash_is_both_a_500_and_a_recorded_exception():
    async with AppDriver(tiny_app()) as drv:
        r = await drv.get("/boom")
        assert r.status_code == 500
        assert len(drv.errors) == 1
        assert isinstance(drv.errors[0], ValueError) and "kaboom" in str(drv.errors[0])


async def test_startup_failure_is_one_line_naming_the_cause():
    with pytest.raises(StartupFailed) as info:
        async with AppDriver(tiny_app(fail_startup=True)):
            pass
    assert isinstance(info.value, AssertionError)
    message = str(info.value)
    assert "RuntimeError: cannot reach the database" in message
    assert "\n" not in message
    assert info.value._render_traceback_() == [f"StartupFailed: {message}"]


async def test_startup_that_hangs_times_out():
    import asyncio

    @asynccontextmanager
    async def lifespan(app):
        await asyncio.sleep(30)
        yield

    with pytest.raises(StartupFailed, match=r"did not finish within 0\.2 s"):
        async with AppDriver(FastAPI(lifespan=lifespan), startup_timeout=0.2):
            pass


async def test_drives_a_real_database_app(fresh_database):
    before = threading.active_count()
    async with AppDriver(make_app(fresh_database("drv"))) as drv:
        assert (await drv.post("/users", json={"email": "a@x"})).status_code == 201
        assert (await drv.get("/users")).json() == ["a@x"]
    assert threading.active_count() == before


async def test_shutdown_still_runs_when_the_block_fails():
    app = tiny_app()
    with pytest.raises(AssertionError):
        async with AppDriver(app):
            raise AssertionError("a check failed")
    assert app.state.stopped
