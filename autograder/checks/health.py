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

from autograder.checks.messages import Hint, check, first_hint, outcome, verdict
from autograder.checks.probe import Call, Exchange, Probe
from autograder.checks.verdict import Verdict


def _body(ex: Exchange) -> str:
    text = ex.response.text.strip()
    return text if len(text) <= 160 else text[:157] + "..."


@check
async def healthy_when_up(probe: Probe, call: Call) -> Verdict:
    """200 when the database answers, after actually asking it something."""
    ex = await probe.request(call)
    ran = len(ex.statements)
    passed = ex.status == 200 and ran >= 1
    return verdict(
        passed,
        f"{call} answers 200 when the database is up, after really querying it",
        f"{outcome(ex)} {_body(ex)}; {ran} SQL statement(s) ran",
        [] if passed else ex.sql,
        hint=first_hint(
            Hint(ex.status != 200, "with a reachable database the health check must answer 200."),
            Hint(
                ran == 0,
                "no SQL reached the database: the endpoint answers without checking anything. "
                "Run a cheap query (`SELECT 1`) on a connection from the app's engine.",
            ),
        ),
    )


@check
async def unhealthy_when_down(probe: Probe, call: Call, *, within: float = 5.0) -> Verdict:
    """503 with a reason when the database cannot be reached, within `within` seconds."""
    t0 = time.perf_counter()
    ex = await probe.request(call)
    seconds = time.perf_counter() - t0
    has_reason = bool(ex.response.content.strip())
    passed = ex.status == 503 and has_reason and seconds <= within
    return verdict(
        passed,
        f"{call} answers 503 with a reason when the database is unreachable, within {within:g} s",
        f"{outcome(ex)} after {seconds:.1f} s, body: {_body(ex) or '(empty)'}",
        [] if passed else ex.sql,
        hint=first_hint(
            Hint(
                ex.status == 200,
                "the status code says healthy, whatever the body says: load balancers and "
                "orchestrators read the status, not the JSON. Catch the database error and answer "
                '503, e.g. `return JSONResponse({"status": "unhealthy", "reason": ...}, '
                "status_code=503)`.",
            ),
            Hint(
                ex.status == 500,
                "the database error escaped as a bare 500. Catch it (OSError and "
                "sqlalchemy.exc.SQLAlchemyError, or Exception) and answer 503 with the reason.",
            ),
            Hint(
                ex.status == 503 and not has_reason,
                "say why in the body (the error's class and message), so a human can act on it.",
            ),
            Hint(
                seconds > within,
                f"the check took {seconds:.1f} s: bound it, e.g. `async with asyncio.timeout(2):` "
                "around the query, and answer 503 when it expires.",
            ),
            default="an unreachable database must be reported as 503 Service Unavailable.",
        ),
    )


NO_SOCKET = "/nonexistent/course-db-is-down"  # a unix-socket folder that does not exist
NO_SERVER = ("127.0.0.1", 1)  # a port where nothing listens: the connection is refused at once


def unreachable_url(url: str, password: str | None = None, *, via: str = "socket") -> str:
    """`url` (same driver, user, password and database) at an address where no database answers.

    Connecting fails at once — no DNS, no TCP timeout — which is what a stopped database
    looks like to the app; nothing about the real server changes. `via="socket"` points it
    at a unix-socket folder that does not exist (asyncpg raises FileNotFoundError),
    `via="port"` at 127.0.0.1:1 (ConnectionRefusedError). `password`, if given, replaces
    the URL's password, e.g. to see whether an error message shows it.
    """
    from sqlalchemy.engine import URL, make_url

    real = make_url(url)
    query = {k: v for k, v in real.query.items() if k not in ("host", "port")}
    if via == "socket":
        host, port, query = None, None, {**query, "host": NO_SOCKET}
    elif via == "port":
        host, port = NO_SERVER
    else:
        raise ValueError("via must be 'socket' or 'port'")
    down = URL.create(
        real.drivername,
        username=real.username,
        password=real.password if password is None else password,
        host=host,
        port=port,
        database=real.database,
        query=query,
    )
    return down.render_as_string(hide_password=False)
