"""Check that a fan-out endpoint really runs its queries concurrently, safely.

`asyncio.gather` over several queries on ONE AsyncSession is the classic
mistake. On a session that has not connected yet it raises
InvalidRequestError; on a session that already holds a connection it raises
nothing: the asyncpg adapter serialises statements on a connection with a lock,
so the queries quietly run one after another. Neither shows in the response.

What shows in the database traffic is *where* and *when* each statement ran.
`StatementWindows` timestamps every statement on the engine (before and after
the cursor call) with the pooled connection it used. A correct fan-out (one
session per task) runs its N statements on N different connections, and their
windows overlap (each one ran while another was running). Queries on
a shared session share one connection; queries awaited one by one do not
overlap.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from sqlalchemy import event

from autograder.checks.messages import check, outcome, verdict
from autograder.checks.probe import Call, Probe
from autograder.checks.verdict import Verdict
from autograder.observe._engines import connection_id, sync_engine_of


@dataclass
class Window:
    sql: str
    connection_id: int
    start: float
    end: float | None = None


@dataclass
class _Span:
    """A finished statement: when it ran, and on which connection."""

    connection_id: int
    start: float
    end: float


class StatementWindows:
    """`with StatementWindows(engine) as w:` records when each statement ran, and on which connection."""

    def __init__(self, engine: Any):
        self.engine = sync_engine_of(engine)
        self.windows: list[Window] = []
        self._open: dict[int, Window] = {}  # id(execution context) -> its window
        self._listening = False

    def _before(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        window = Window(statement, connection_id(conn), time.perf_counter())
        self.windows.append(window)
        self._open[id(context)] = window

    def _after(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        window = self._open.pop(id(context), None)
        if window is not None:
            window.end = time.perf_counter()

    def _hooks(self) -> list[tuple[str, Callable[..., None]]]:
        return [("before_cursor_execute", self._before), ("after_cursor_execute", self._after)]

    def __enter__(self) -> StatementWindows:
        for name, fn in self._hooks():
            event.listen(self.engine, name, fn)
        self._listening = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._listening:
            for name, fn in self._hooks():
                event.remove(self.engine, name, fn)
            self._listening = False


def _timeline(windows: list[Window], t0: float) -> str:
    names: dict[int, str] = {}
    parts = []
    for w in windows:
        label = names.setdefault(w.connection_id, chr(ord("A") + len(names) % 26))
        end = f"{(w.end - t0) * 1000:.0f}" if w.end is not None else "?"
        parts.append(f"connection {label}: {(w.start - t0) * 1000:.0f}-{end} ms")
    return "; ".join(parts)


@check
async def fans_out_concurrently(probe: Probe, call: Call, *, queries: int, matching: str | None = None) -> Verdict:
    """`call` must run `queries` statements (those whose SQL contains `matching`, or
    every statement) on as many different connections, all in flight at once."""
    with StatementWindows(probe.engine) as watch:
        ex = await probe.request(call)
    needle = matching.lower() if matching else None
    picked = [w for w in watch.windows if needle is None or needle in w.sql.lower()]
    what = f"statements containing {matching!r}" if matching else "statements"
    expected = (
        f"{call} runs its {queries} {what} at the same time, each on its own session (so on its own pooled connection)"
    )
    sql = [w.sql for w in watch.windows]

    def failed(actual: str, hint: str = "") -> Verdict:
        return verdict(False, expected, actual, sql, hint=hint)

    if ex.failed or ex.errors:
        shared = any("concurrent operations are not permitted" in str(e) for e in ex.errors)
        return failed(
            f"{outcome(ex)}",
            "one AsyncSession was used by several tasks at once. Give every "
            "concurrent task its own session: `async with SessionLocal() as "
            "session:` inside the task."
            if shared
            else "the endpoint must answer with a 2xx status.",
        )
    if len(picked) < queries:
        return failed(f"{len(picked)} {what} ran (expected {queries})", "run each of the queries once per request.")
    t0 = min(w.start for w in picked)
    timeline = _timeline(picked, t0)
    spans = [_Span(w.connection_id, w.start, w.end) for w in picked if w.end is not None]
    if len(spans) < len(picked):
        return failed(f"a statement did not finish ({timeline})")
    connections = {w.connection_id for w in spans}
    ordered = sorted(spans, key=lambda w: w.start)
    if all(later.start >= earlier.end for earlier, later in pairwise(ordered)):
        return failed(
            f"the {what} ran one after another, never all at once ({timeline})",
            "awaiting the queries one by one gives no speed-up. Start them together: "
            "`await asyncio.gather(task_a(), task_b(), ...)`, each task with its own session.",
        )
    # two statements in flight together on one connection: one session used by several tasks
    # (a connection reused *after* another statement finished is just the pool at work)
    queued = {
        w.connection_id
        for w in spans
        for o in spans
        if o is not w and o.connection_id == w.connection_id and o.start < w.end and w.start < o.end
    }
    if queued:
        return failed(
            f"{len(picked)} {what} were started together but shared {len(connections)} "
            f"connection(s), so they queued and ran one after another ({timeline})",
            "asyncio.gather over one session does not run queries in parallel: the session has "
            "one connection, and a connection runs one statement at a time. Open one session per "
            "task (`async with SessionLocal() as session:` inside each coroutine you gather).",
        )
    # Each statement must have run together with at least one other (a strict "all at
    # once" would fail a correct app when a loaded machine is slow to open a connection).
    alone = [
        i for i, w in enumerate(spans, 1) if not any(o is not w and o.start < w.end and w.start < o.end for o in spans)
    ]
    if alone:
        return failed(
            f"statement(s) {', '.join(map(str, alone))} of the {what} ran alone, after the others ({timeline})",
            "start every query before awaiting any of them: `await asyncio.gather(...)` over "
            "one coroutine per query, each with its own session.",
        )
    wall = (max(w.end for w in spans) - t0) * 1000
    busy = sum(w.end - w.start for w in spans) * 1000
    return verdict(
        True,
        expected,
        f"{len(picked)} {what} on {len(connections)} connections ran concurrently: "
        f"{wall:.0f} ms for {busy:.0f} ms of queries ({timeline})",
    )
