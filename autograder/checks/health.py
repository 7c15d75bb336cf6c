"""Check that a health endpoint tells the truth about the database.

A load balancer or an orchestrator reads the *status code* of a health check,
not its body. An endpoint that catches the database error and answers
`200 {"status": "unhealthy"}` reports "healthy" to every machine that asks.
Down must be a 5xx (503 Service Unavailable), with a reason in the body for the
humans, and it must come back quickly: a health check that hangs is as bad as
one that lies.

Run `healthy_when_up` on the app pointed at the real database and
`unhealthy_when_down` on the same app built with an unreachable URL (give the
Probe `db_url=` the real one for its verification connection).
"""

from __future__ import annotations

import time

from autograder.checks._describe import outcome
from autograder.checks.probe import Call, Probe
from autograder.checks.verdict import Verdict


def _body(ex) -> str:
    text = ex.response.text.strip()
    return text if len(text) <= 160 else text[:157] + "..."


async def healthy_when_up(probe: Probe, call: Call) -> Verdict:
    """200 when the database answers, after actually asking it something."""
    ex = await probe.request(call)
    ran = len(ex.statements)
    passed = ex.status == 200 and ran >= 1
    expected = f"{call} answers 200 when the database is up, after really querying it"
    actual = f"{outcome(ex)} {_body(ex)}; {ran} SQL statement(s) ran"
    if ex.status != 200:
        hint = "with a reachable database the health check must answer 200."
    elif ran == 0:
        hint = ("no SQL reached the database: the endpoint answers without checking anything. "
                "Run a cheap query (`SELECT 1`) on a connection from the app's engine.")
    else:
        hint = ""
    return Verdict("healthy_when_up", passed, expected, actual, [] if passed else ex.sql, hint)


async def unhealthy_when_down(probe: Probe, call: Call, *, within: float = 5.0) -> Verdict:
    """503 with a reason when the database cannot be reached, within `within` seconds."""
    t0 = time.perf_counter()
    ex = await probe.request(call)
    seconds = time.perf_counter() - t0
    has_reason = bool(ex.response.content.strip())
    passed = ex.status == 503 and has_reason and seconds <= within
    expected = (f"{call} answers 503 with a reason when the database is unreachable, "
                f"within {within:g} s")
    actual = f"{outcome(ex)} after {seconds:.1f} s, body: {_body(ex) or '(empty)'}"
    if ex.status == 200:
        hint = ("the status code says healthy, whatever the body says: load balancers and "
                "orchestrators read the status, not the JSON. Catch the database error and answer "
                "503, e.g. `return JSONResponse({\"status\": \"unhealthy\", \"reason\": ...}, "
                "status_code=503)`.")
    elif ex.status == 500:
        hint = ("the database error escaped as a bare 500. Catch it (OSError and "
                "sqlalchemy.exc.SQLAlchemyError, or Exception) and answer 503 with the reason.")
    elif ex.status == 503 and not has_reason:
        hint = "say why in the body (the error's class and message), so a human can act on it."
    elif seconds > within:
        hint = (f"the check took {seconds:.1f} s: bound it, e.g. `async with asyncio.timeout(2):` "
                "around the query, and answer 503 when it expires.")
    else:
        hint = "an unreachable database must be reported as 503 Service Unavailable."
    return Verdict("unhealthy_when_down", passed, expected, actual, [] if passed else ex.sql,
                   "" if passed else hint)


def unreachable_url(url: str) -> str:
    """`url` with its host replaced by a unix-socket folder that does not exist.

    Connecting fails at once (no DNS, no TCP timeout), which is what a stopped
    database looks like to the app; nothing about the real server changes.
    """
    from sqlalchemy.engine import URL, make_url

    real = make_url(url)
    query = {k: v for k, v in real.query.items() if k != "host"}
    down = URL.create(real.drivername, username=real.username, password=real.password,
                      database=real.database,
                      query={**query, "host": "/nonexistent/course-db-is-down"})
    return down.render_as_string(hide_password=False)
