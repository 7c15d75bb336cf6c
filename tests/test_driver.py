import inspect
import threading
from contextlib import asynccontextmanager

import pytest
from fastapi import FastAPI

from autograder.driver import AppDriver, StartupFailed
from tests.apps.library import make_app


def kaboom_line() -> int:
    """The line of tiny_app's `raise ValueError(...)`: where the driver must say the crash was raised."""
    lines, start = inspect.getsourcelines(tiny_app)
    return start + next(i for i, text in enumerate(lines) if "raise ValueError" in text)


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


async def test_the_500_of_a_crash_says_what_was_raised_and_where():
    async with AppDriver(tiny_app()) as drv:
        r = await drv.get("/boom")
    line = kaboom_line()
    assert r.text == f"ValueError: kaboom (raised at tests/test_driver.py, line {line}, in boom)"
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert int(r.headers["content-length"]) == len(r.content)


async def test_a_500_the_app_chose_and_an_error_after_the_response_are_left_as_they_were():
    from fastapi import BackgroundTasks
    from fastapi.responses import JSONResponse

    app = FastAPI()

    @app.get("/chosen")
    async def chosen():
        return JSONResponse({"detail": "the app's own 500"}, status_code=500)

    @app.get("/late")
    async def late(tasks: BackgroundTasks):
        def fail_later():
            raise RuntimeError("after the response")

        tasks.add_task(fail_later)
        return {"ok": True}

    async with AppDriver(app) as drv:
        chosen_response = await drv.get("/chosen")
        late_response = await drv.get("/late")
        errors = list(drv.errors)
    assert chosen_response.status_code == 500 and chosen_response.json() == {"detail": "the app's own 500"}
    assert late_response.status_code == 200 and late_response.json() == {"ok": True}
    assert [str(e) for e in errors] == ["after the response"]


async def test_a_bare_asgi_app_that_raises_before_answering_gets_the_explained_500():
    async def bare(scope, receive, send):
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        raise LookupError("no route table")

    async with AppDriver(bare) as drv:
        r = await drv.get("/anything")
    assert r.status_code == 500
    assert r.text.startswith("LookupError: no route table (raised at tests/test_driver.py")


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


async def test_an_exception_that_cannot_be_printed_still_gets_its_name_in_the_500():
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("a broken __str__")

    app = FastAPI()

    @app.get("/odd")
    async def odd():
        raise Unprintable()

    async with AppDriver(app) as drv:
        r = await drv.get("/odd")
    assert r.status_code == 500 and r.text == "Unprintable"
    assert [type(e).__name__ for e in drv.errors] == ["Unprintable"]
