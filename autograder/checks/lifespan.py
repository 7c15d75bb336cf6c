"""Checks on an app's engine lifecycle: startup, shutdown, one engine per app.

They start and stop the app themselves (an app factory, `create_app(url)`, or an
app object) and judge what the *server* saw: the backends connected to the
database, read from `pg_stat_activity` through a separate asyncpg connection.
Backends that existed before the check started (a notebook's own engine) are
left out, so only connections the app under test opened are counted.

    (await fails_at_startup(create_app, unreachable_url(db.url))).require()
    (await no_connections_after_shutdown(create_app(db.url), db.url, calls=[Call.get("/items")])).require()
    (await separate_engines(create_app, db.url, Call.get("/items"))).require()
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from autograder.checks.messages import Hint, app_error, check, first_hint, plural, verdict
from autograder.checks.probe import Call
from autograder.checks.verdict import Verdict
from autograder.db.admin import asyncpg_params
from autograder.driver import AppDriver, StartupFailed
from autograder.errors import describe, first_line

SETTLE_S = 2.0  # a closed connection's backend leaves pg_stat_activity within milliseconds


class _Server:
    """A verification connection that lists the client backends of one database."""

    def __init__(self, db_url: str):
        self.db_url = db_url
        self.conn: asyncpg.Connection | None = None

    async def __aenter__(self) -> _Server:
        self.conn = await asyncpg.connect(**asyncpg_params(make_url(self.db_url)))
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self.conn is not None:
            await self.conn.close()

    async def backends(self) -> set[int]:
        assert self.conn is not None, "use `async with _Server(db_url) as server:`"
        rows = await self.conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )
        return {r["pid"] for r in rows}

    async def gone(self, pids: set[int], settle: float = SETTLE_S) -> set[int]:
        """Which of `pids` are still connected once they had `settle` seconds to leave."""
        deadline = time.monotonic() + settle
        while True:
            left = pids & await self.backends()
            if not left or time.monotonic() >= deadline:
                return left
            await asyncio.sleep(0.05)


def _redacted(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


async def _send(driver: AppDriver, call: Call) -> str:
    response = await driver.request(call.method, call.url, **call.kwargs)
    text = f"{call} -> {response.status_code}"
    errors = driver.errors
    if response.status_code >= 500 and errors:
        text += f" ({app_error(errors[-1])})"
    return text


@check
async def fails_at_startup(
    app_factory: Callable[[str], Any],
    bad_url: str,
    call: Call | None = None,
    startup_timeout: float = 10,
) -> Verdict:
    """The app built for an unreachable database must refuse to start, saying which database.

    Passes when the lifespan startup raises and the error's first line names the
    database (its name from `bad_url`) without showing the URL's password.
    When the app starts anyway, `call` (if given) is sent to show where it fails instead.
    """
    url = make_url(bad_url)
    where = _redacted(bad_url)
    expected = (
        f"starting the app against an unreachable database ({where}) fails during startup, "
        f"with an error that names the database ({url.database!r}) and hides the password"
    )
    try:
        app = app_factory(bad_url)
    except Exception as exc:  # noqa: BLE001 - whatever the learner's factory raises is the verdict
        return verdict(
            False,
            expected,
            f"building the app raised before it started: {describe(exc)}",
            hint="create_app(database_url) should only build the app; connect in the lifespan.",
        )
    driver = AppDriver(app, startup_timeout=startup_timeout)
    try:
        async with driver:
            outcome = "the app started as if the database were there"
            if call is not None:
                outcome += f"; the first request failed instead: {await _send(driver, call)}"
            return verdict(
                False,
                expected,
                outcome,
                hint=(
                    "the engine connects lazily, so nothing tried the database before the first request. "
                    "In the lifespan, before `yield`, open a connection and run `SELECT 1` "
                    '(`async with engine.connect() as conn: await conn.execute(text("SELECT 1"))`) '
                    "and turn a failure into an error that names the database."
                ),
            )
    except StartupFailed as exc:
        message = str(exc).removeprefix("the app failed to start: ")
    said = first_line(message)
    password = url.password
    names_db = bool(url.database and url.database in said)
    leaks = bool(password) and str(password) in message
    if leaks:
        said = said.replace(str(password), "<the password>")
    return verdict(
        names_db and not leaks,
        expected,
        f"startup failed with: {said}" + ("" if names_db else f" (no mention of {url.database!r})"),
        hint=first_hint(
            Hint(
                leaks,
                "the error shows the database password. Render the URL with the password hidden: "
                "`engine.url.render_as_string(hide_password=True)` (what `str(engine.url)` does).",
            ),
            Hint(
                not names_db,
                "the app did stop at startup, but the error does not say which database it could not reach, "
                "so whoever reads the log must guess. Catch the connection error in the lifespan and raise, "
                'for example, `RuntimeError(f"cannot connect to the database at {engine.url}: {exc!r}") '
                "from exc`.",
            ),
        ),
    )


@check
async def no_connections_after_shutdown(
    app: Any, db_url: str, calls: Iterable[Call] = (), settle: float = SETTLE_S
) -> Verdict:
    """After the app's lifespan shutdown, none of the connections it opened is still connected.

    `db_url` is the database the app uses; the backends are read server-side
    (`pg_stat_activity`) on a separate connection, before, during and after.
    """
    calls = list(calls)
    expected = "every connection the app opened is closed when its lifespan shuts down (none left in pg_stat_activity)"
    async with _Server(db_url) as server:
        before = await server.backends()
        driver = AppDriver(app)
        done: list[str] = []
        try:
            async with driver:
                for call in calls:
                    done.append(await _send(driver, call))
                opened = await server.backends() - before
        except StartupFailed as exc:
            return verdict(
                False,
                expected,
                f"the app did not start against the working database: {exc}",
                hint="the startup check must pass when the database is reachable.",
            )
        left = await server.gone(opened | (await server.backends() - before), settle)
    ran = f"{'; '.join(done)}; " if done else ""
    if not left:
        return verdict(
            True, expected, f"{ran}{plural(len(opened), 'connection')} open while the app ran, none after shutdown"
        )
    return verdict(
        False,
        expected,
        (
            f"{ran}{plural(len(opened), 'connection')} open while the app ran; "
            f"{len(left)} still connected {settle:g} s after shutdown (server pids {sorted(left)})"
        ),
        hint=(
            "the engine was not disposed, so its pool keeps its connections open for as long as the "
            "process lives. End the lifespan with `await engine.dispose()` after `yield` "
            "(in a `finally:` so a failure cannot skip it)."
        ),
    )


@check
async def separate_engines(app_factory: Callable[[str], Any], db_url: str, call: Call) -> Verdict:
    """Two apps from one factory each own an engine: own connections, each closed by its own shutdown.

    Runs app A and app B (both `app_factory(db_url)`) at the same time, sends `call`
    to each, shuts A down, checks that B still works and kept its connections,
    then shuts B down.
    """
    expected = (
        "two apps built by create_app(url) each create their own engine in the lifespan "
        "(app.state.engine), open their own connections, and each closes only its own at shutdown"
    )
    shared_hint = (
        "an engine created at import time (or cached per URL) is shared by every app the process "
        "builds (one per test, say): they all share one pool, whose connections belong to the event "
        "loop that opened them, and one app's shutdown disposes the others' engine. Create the engine "
        "inside the lifespan and keep it on app.state."
    )

    def fail(actual: str, hint: str) -> Verdict:
        return verdict(False, expected, actual, hint=hint)

    app_a, app_b = app_factory(db_url), app_factory(db_url)
    if app_a is app_b:
        return fail("create_app returned the same app object twice", "build a new FastAPI() on every call.")
    async with _Server(db_url) as server:
        before = await server.backends()
        drv_a, drv_b = AppDriver(app_a), AppDriver(app_b)
        a_running = b_running = False
        try:
            await drv_a.__aenter__()
            a_running = True
            said_a = await _send(drv_a, call)
            pids_a = await server.backends() - before
            await drv_b.__aenter__()
            b_running = True
            said_b = await _send(drv_b, call)
            pids_b = await server.backends() - before - pids_a
            engine_a = getattr(app_a.state, "engine", None)
            engine_b = getattr(app_b.state, "engine", None)
            if engine_a is None or engine_b is None:
                return fail(
                    "after startup, app.state.engine is missing",
                    "store the engine on the app in the lifespan: `app.state.engine = engine`.",
                )
            if engine_a is engine_b:
                return fail(f"both apps use the same engine object (A: {said_a}, B: {said_b})", shared_hint)
            if not pids_b:
                return fail(
                    f"A: {said_a} opened {plural(len(pids_a), 'connection')}; B: {said_b} opened none of its own",
                    shared_hint,
                )
            a_running = False
            await drv_a.__aexit__(None, None, None)
            left_a = await server.gone(pids_a)
            lost_b = pids_b - await server.backends()
            after = await _send(drv_b, call)
            b_running = False
            await drv_b.__aexit__(None, None, None)
            left_b = await server.gone(pids_b | (await server.backends() - before - pids_a))
        except StartupFailed as exc:
            return fail(
                f"an app built for the working database did not start: {exc}",
                "the startup check must pass when the database is reachable.",
            )
        finally:
            if b_running:
                await drv_b.__aexit__(None, None, None)
            if a_running:
                await drv_a.__aexit__(None, None, None)
    problems = []
    if left_a:
        problems.append(f"after A shut down, {plural(len(left_a), 'connection')} of A's stayed open")
    if lost_b:
        problems.append(f"A's shutdown closed {plural(len(lost_b), 'connection')} of B's")
    if " -> 5" in after:
        problems.append(f"B failed after A shut down: {after}")
    if left_b:
        problems.append(f"after B shut down, {plural(len(left_b), 'connection')} of B's stayed open")
    ran = f"A: {said_a} ({plural(len(pids_a), 'connection')}), B: {said_b} ({plural(len(pids_b), 'connection')})"
    if problems:
        return fail(
            f"{ran}; " + "; ".join(problems),
            "each app must `await engine.dispose()` its own engine when its lifespan ends "
            "(after `yield`, in a `finally:`), and nothing else.",
        )
    return verdict(True, expected, f"{ran}; each app's connections closed with its own shutdown")
