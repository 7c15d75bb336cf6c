"""The lifespan checks pass a correct app and reject each lifecycle mistake."""

import pytest

from autograder.checks import Call
from autograder.checks.lifespan import fails_at_startup, no_connections_after_shutdown, separate_engines
from autograder.demos.lifespan import server_connections, unreachable_url
from tests.apps.lifespan import create_tables, make_factory

ITEMS = Call.get("/items")


@pytest.fixture
async def db_url(fresh_database):
    url = fresh_database("life")
    await create_tables(url)
    return url


@pytest.fixture
def factory(db_url):
    """factory(variant) -> create_app; import-time variants 'import' db_url."""
    made = []

    def make(variant: str = "correct"):
        create_app = make_factory(variant, import_url=db_url)
        made.append(create_app)
        return create_app

    return make


async def _dispose_leftovers(*apps):
    for app in apps:
        engine = getattr(app.state, "engine", None)
        if engine is not None:
            await engine.dispose()


# fails_at_startup ---------------------------------------------------------------


async def test_a_startup_probe_naming_the_database_passes(factory, db_url):
    v = await fails_at_startup(factory("correct"), unreachable_url(db_url, password="pw"), ITEMS)
    assert v, str(v)
    assert "cannot connect to the database at" in v.actual
    assert "***" in v.actual


async def test_no_startup_probe_is_rejected_with_the_late_failure(factory, db_url):
    v = await fails_at_startup(factory("no_startup_probe"), unreachable_url(db_url), ITEMS)
    assert not v
    assert "the app started as if the database were there" in v.actual
    assert "GET /items -> 500 (ConnectionRefusedError" in v.actual
    assert "SELECT 1" in v.hint


async def test_a_raw_driver_error_at_startup_is_rejected(factory, db_url):
    bad = unreachable_url(db_url)
    v = await fails_at_startup(factory("raw_startup_error"), bad, ITEMS)
    assert not v
    assert "startup failed with: ConnectionRefusedError" in v.actual
    assert "no mention of" in v.actual
    assert "does not say which database" in v.hint


async def test_a_startup_error_showing_the_password_is_rejected(factory, db_url):
    bad = unreachable_url(db_url, password="s3cret-pw")
    v = await fails_at_startup(factory("password_in_error"), bad, ITEMS)
    assert not v
    assert "hide_password=True" in v.hint
    assert "s3cret-pw" not in str(v)
    assert "<the password>" in v.actual
    # the same URL through the correct app: named, password hidden
    assert await fails_at_startup(factory("correct"), bad, ITEMS)


async def test_an_import_time_engine_ignores_the_url_and_starts(factory, db_url):
    v = await fails_at_startup(factory("import_time_engine"), unreachable_url(db_url), ITEMS)
    assert not v
    assert "GET /items -> 200" in v.actual


# no_connections_after_shutdown ---------------------------------------------------


async def test_disposing_at_shutdown_leaves_no_connection(factory, db_url):
    app = factory("correct")(db_url)
    v = await no_connections_after_shutdown(app, db_url, calls=[ITEMS, Call.post("/items", json={"name": "a"})])
    assert v, str(v)
    assert "1 connection open while the app ran, none after shutdown" in v.actual
    assert await server_connections(db_url) == []


async def test_no_dispose_is_rejected_server_side(factory, db_url):
    app = factory("no_dispose")(db_url)
    v = await no_connections_after_shutdown(app, db_url, calls=[ITEMS], settle=0.5)
    assert not v
    assert "1 still connected 0.5 s after shutdown" in v.actual
    assert "await engine.dispose()" in v.hint
    assert len(await server_connections(db_url)) == 1
    await _dispose_leftovers(app)
    assert await server_connections(db_url) == []


async def test_an_app_that_cannot_start_is_reported(factory, db_url):
    app = factory("correct")(unreachable_url(db_url))
    v = await no_connections_after_shutdown(app, db_url)
    assert not v
    assert "did not start against the working database" in v.actual


# separate_engines -----------------------------------------------------------------


async def test_two_apps_with_their_own_engines_pass(factory, db_url):
    v = await separate_engines(factory("correct"), db_url, ITEMS)
    assert v, str(v)
    assert "A: GET /items -> 200 (1 connection), B: GET /items -> 200 (1 connection)" in v.actual
    assert await server_connections(db_url) == []


@pytest.mark.parametrize("variant", ["import_time_engine", "cached_engine"])
async def test_a_shared_engine_is_rejected(factory, db_url, variant):
    v = await separate_engines(factory(variant), db_url, ITEMS)
    assert not v
    assert "both apps use the same engine object (A: GET /items -> 200, B: GET /items -> 200)" in v.actual
    assert "Create the engine inside the lifespan" in v.hint
    assert await server_connections(db_url) == []  # both shutdowns disposed the shared engine


async def test_an_app_that_does_not_dispose_its_engine_is_rejected(factory, db_url):
    create_app = factory("no_dispose")
    apps = []

    def building(url):
        apps.append(create_app(url))
        return apps[-1]

    v = await separate_engines(building, db_url, ITEMS)
    assert not v
    assert "after A shut down, 1 connection of A's stayed open" in v.actual
    assert "after B shut down, 1 connection of B's stayed open" in v.actual
    assert "dispose()" in v.hint
    await _dispose_leftovers(*apps)
