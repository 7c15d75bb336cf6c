"""Checks that one request is one unit of work: one session, one transaction, from get_db.

Repositories make it easy to split a request's work across several objects, and
just as easy to split its transaction by accident: a provider that opens its own
session, `Depends(get_db, use_cache=False)`, the same `get_db` declared with two
different `scope=` values (FastAPI caches per scope), a repository that commits.
Every one of these still answers 201. What differs is what the database saw:

- `single_transaction(exchange)`: the request's trace is one BEGIN ... one COMMIT
  (or ROLLBACK), on one connection, by one Session object;
- `session_from_dependency(probe, call, get_db)`: replaces `get_db` for one
  request by a recording wrapper (through `app.dependency_overrides`) and checks
  that it ran once and that the session it yielded is the only one that did work.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from autograder.checks.messages import Hint, check, first_hint, outcome, trace, verdict
from autograder.checks.probe import Call, Exchange, Probe
from autograder.checks.verdict import Verdict

_ONE_ALIAS = (
    "Let every repository provider take the same session alias (e.g. `session: DBSession`, declared "
    'once as `Annotated[AsyncSession, Depends(get_db, scope="function")]`): FastAPI then calls get_db '
    "once per request and hands all of them the same session. Never open a session inside a repository "
    "or a provider, and never `use_cache=False` on get_db."
)


def _ordinals(ids: list[int]) -> dict[int, int]:
    """Connection ids are addresses; name them 1, 2, ... in order of first use."""
    return {cid: i for i, cid in enumerate(dict.fromkeys(ids), 1)}


@check
def single_transaction(exchange: Exchange, end: str = "COMMIT") -> Verdict:
    """The request ran one transaction, ended by `end` (COMMIT or ROLLBACK), on one connection,
    in one Session. Savepoints inside it are allowed."""
    if end not in ("COMMIT", "ROLLBACK"):
        raise ValueError("end must be 'COMMIT' or 'ROLLBACK'")
    other = "ROLLBACK" if end == "COMMIT" else "COMMIT"
    kinds = exchange.tx_kinds()
    begins, ends, others = kinds.count("BEGIN"), kinds.count(end), kinds.count(other)
    conn_ids = [e.connection_id for e in exchange.transactions] + [s.connection_id for s in exchange.statements]
    names = _ordinals(conn_ids)
    sessions = exchange.sessions
    passed = (
        begins == 1
        and ends == 1
        and others == 0
        and kinds[0] == "BEGIN"
        and kinds[-1] == end
        and len(names) == 1
        and len(sessions) == 1
    )
    by_conn = "; ".join(
        f"connection {n}: {trace([e.kind for e in exchange.transactions if e.connection_id == cid])}"
        for cid, n in names.items()
    )
    actual = (
        f"{outcome(exchange)}; {len(sessions)} session(s) did work; {begins} BEGIN, {ends} {end}"
        + (f", {others} {other}" if others else "")
        + f"; transactions: {trace(kinds)}"
    )
    if len(names) > 1:
        actual += f" ({by_conn})"
    return verdict(
        passed,
        f"{exchange.call} runs in one transaction (BEGIN ... {end}) on one connection, in one session",
        actual,
        exchange.sql,
        hint=first_hint(
            Hint(
                len(sessions) > 1,
                f"{len(sessions)} different sessions worked in this one request, so its writes were split "
                f"over {max(begins, 1)} transactions that commit or fail separately. " + _ONE_ALIAS,
            ),
            Hint(not kinds, "the request did no database work at all; did the route call its repositories?"),
            Hint(
                end == "COMMIT" and ends == 0,
                "nothing was committed: the session closed with its transaction still open, which rolls "
                "it back. get_db commits once, after `yield session`, when the route has succeeded.",
            ),
            Hint(
                end == "COMMIT" and (ends > 1 or begins > 1),
                f"one session committed {ends} times within one request, so a later failure can no longer "
                "undo the earlier writes. Repositories (and routes) only `flush()`; the single commit "
                "belongs to get_db, after the route returned.",
            ),
            Hint(
                end == "ROLLBACK" and others,
                "part of this failed request was committed before it failed. Repositories and routes "
                "never commit; get_db commits only when the route succeeded.",
            ),
            default=f"expected one transaction ending in {end}; compare the trace above.",
        ),
    )


def _recording(dependency: Callable[..., Any], yielded: list[Any]) -> Callable[..., Any]:
    """A stand-in for `dependency` with the same parameters that records what it provides."""
    signature = inspect.signature(dependency).replace(return_annotation=inspect.Signature.empty)
    recorder: Callable[..., Any]
    if inspect.isasyncgenfunction(dependency):
        as_context = asynccontextmanager(dependency)

        async def record_yielded(**kwargs: Any) -> AsyncIterator[Any]:
            # exceptions from the route are thrown into the original
            async with as_context(**kwargs) as value:
                yielded.append(value)
                yield value

        recorder = record_yielded
    elif inspect.iscoroutinefunction(dependency):

        async def record_returned(**kwargs: Any) -> Any:
            value = await dependency(**kwargs)
            yielded.append(value)
            return value

        recorder = record_returned
    else:
        raise TypeError(
            f"{getattr(dependency, '__name__', dependency)!r} is not an async dependency "
            "(an `async def` with `yield`, or an `async def` returning a session)"
        )
    # FastAPI reads the parameters from `__signature__` (inspect.signature does); typeshed's
    # function type does not declare it, so it goes into the function's attributes directly.
    vars(recorder)["__signature__"] = signature
    recorder.__name__ = getattr(dependency, "__name__", "dependency")
    return recorder


@check
async def session_from_dependency(probe: Probe, call: Call, dependency: Callable[..., Any]) -> Verdict:
    """During `call`, `dependency` (your get_db) runs exactly once and every session that did
    database work is the one it provided. Observed by overriding `dependency` for this one request."""
    name = getattr(dependency, "__name__", "get_db")
    overrides = probe.app.dependency_overrides
    had_override = dependency in overrides
    previous = overrides.get(dependency)
    yielded: list[Any] = []
    overrides[dependency] = _recording(previous if had_override else dependency, yielded)
    try:
        ex = await probe.request(call)
    finally:
        if had_override:
            overrides[dependency] = previous
        else:
            overrides.pop(dependency, None)
    provided = [getattr(s, "sync_session", s) for s in yielded]
    if probe.observation is None:
        raise RuntimeError("the probe is not started: use `async with Probe(app) as probe:`")
    refs = {u.serial: u.ref for u in probe.observation.sessions.uses}
    worked = [refs[serial]() for serial in ex.sessions]
    strangers = [s for s in worked if not any(s is p for p in provided)]
    return verdict(
        len(yielded) == 1 and bool(worked) and not strangers,
        f"during {call}, {name} runs once and its session is the only one that does database work",
        (
            f"{outcome(ex)}; {name} ran {len(yielded)} time(s); {len(worked)} session(s) did work, "
            f"{len(strangers)} of them not from {name}; transactions: {trace(ex.tx_kinds())}"
        ),
        ex.sql,
        hint=first_hint(
            Hint(
                not yielded,
                f"{name} never ran for this request: the session that did the work came from somewhere "
                f"else (a `SessionLocal()` in a repository or provider?). " + _ONE_ALIAS,
            ),
            Hint(
                len(yielded) > 1,
                f"{name} ran {len(yielded)} times in one request. FastAPI reuses a dependency's value "
                "within a request only for the same function with the same `scope` and `use_cache=True`; "
                'two declarations that differ (`use_cache=False`, or `scope="function"` in one place and '
                "the default in another) each get a session of their own. " + _ONE_ALIAS,
            ),
            Hint(
                strangers,
                f"{len(strangers)} session(s) not created by {name} did database work in this request. " + _ONE_ALIAS,
            ),
            default=f"{name} provided a session but nothing used it; did the route call its repositories?",
        ),
    )
