"""Check optimistic locking: of many concurrent updates from the same version, one wins.

`single_winner` sends every call at once through the app (each request with its own
session, as in production; `concurrency.run_concurrently`). The calls all carry the
same version of the same record, so exactly `winners` of them may succeed; every
other one must be refused with `conflict_status` (409), never a 5xx. Afterwards the
committed state is read on the probe's separate connection (`state`: label ->
(SQL, expected value)), and one of the calls is replayed alone: it carries a
version that is now stale, so it must be refused as well.

An app without a version check lets every request win (the last writer silently
overwrites the others); a version compared in Python only is a check-then-act
race (requests that read the version before the first commit all win); a mapper
`version_id_col` whose `StaleDataError` is not handled turns the losers into 500s.

A race only shows when requests overlap. In-process, on an idle machine, the first request can
finish before the others have even connected (a cold pool's connects are slower than one
transaction), and a check-then-act app then looks correct. `hold_writes_on=table` makes the
overlap certain, as production load would: while the burst runs, a trigger holds each UPDATE
of that table for `hold_seconds` before it writes, so every request has read the row before
the first writer commits.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from autograder.checks.concurrency import run_concurrently
from autograder.checks.messages import Findings, app_error, check, outcome, verdict
from autograder.checks.probe import Call, Probe
from autograder.checks.verdict import Verdict

__all__ = ["single_winner"]

HOLD = "autograder_hold_write"


@asynccontextmanager
async def _writes_held(probe: Probe, table: str, seconds: float) -> AsyncIterator[None]:
    quoted = ".".join(f'"{part}"' for part in table.split("."))
    await probe.execute(
        f"CREATE OR REPLACE FUNCTION {HOLD}() RETURNS trigger LANGUAGE plpgsql AS "
        f"$fn$ BEGIN PERFORM pg_sleep({float(seconds)}); RETURN NEW; END $fn$"
    )
    try:
        await probe.execute(f"CREATE TRIGGER {HOLD} BEFORE UPDATE ON {quoted} FOR EACH ROW EXECUTE FUNCTION {HOLD}()")
        yield
    finally:
        await probe.execute(f"DROP FUNCTION IF EXISTS {HOLD}() CASCADE")  # its trigger goes with it


@check
async def single_winner(
    probe: Probe,
    calls: Sequence[Call],
    *,
    state: Mapping[str, tuple[str, Any]] | None = None,
    winners: int = 1,
    conflict_status: int = 409,
    concurrency: int | None = None,
    hold_writes_on: str | None = None,
    hold_seconds: float = 0.3,
) -> Verdict:
    calls = list(calls)
    if len(calls) < 2:
        raise ValueError("a burst needs at least two calls")
    errors_at = len(probe.driver.errors)
    if hold_writes_on is None:
        responses = await run_concurrently(probe, calls, concurrency or len(calls))
    else:
        async with _writes_held(probe, hold_writes_on, hold_seconds):
            responses = await run_concurrently(probe, calls, concurrency or len(calls))
    errors = probe.driver.errors[errors_at:]
    codes = Counter(r.status_code for r in responses if r is not None)
    won = sum(n for code, n in codes.items() if 200 <= code < 300)
    crashed = sum(n for code, n in codes.items() if code >= 500)
    state = dict(state or {})
    observed = {label: await probe.fetchval(sql) for label, (sql, _) in state.items()}
    replay = await probe.request(calls[0])

    found = Findings()
    if crashed:
        stale = any(type(e).__name__ == "StaleDataError" for e in errors)
        found.add(
            f"{crashed} request(s) failed with a 5xx" + (f" ({app_error(errors[0])})" if errors else ""),
            "the version check worked (the UPDATE matched 0 rows and SQLAlchemy raised StaleDataError), "
            "but nobody turned it into an answer: flush inside the service, catch "
            "`sqlalchemy.orm.exc.StaleDataError` and answer 409 Conflict."
            if stale
            else "a lost race is the client's problem to retry, not a crash: answer 409 Conflict.",
        )
    if won > winners:
        found.add(
            f"{won} requests that all sent the same version were accepted (lost updates: each "
            f"overwrote the previous one)",
            "the version the client sent is never compared, so every writer wins and the last one "
            "silently overwrites the others. Keep a version column, answer 409 when the client's "
            "version is not the current one, and let the mapper guard the UPDATE: "
            '`__mapper_args__ = {"version_id_col": version}`.'
            if not replay.failed
            else "comparing the version in Python is not enough: every request read the same version before "
            "the first one committed. Make the UPDATE itself conditional on the version: "
            '`__mapper_args__ = {"version_id_col": version}` on the model makes SQLAlchemy write '
            "`UPDATE ... WHERE id = :id AND version = :old` and raise StaleDataError when another "
            "transaction got there first.",
        )
    elif won < winners:
        found.add(
            f"only {won} of the {len(calls)} requests succeeded (expected {winners})",
            "the first request to arrive holds the current version: it must succeed.",
        )
    others = {code: n for code, n in codes.items() if code != conflict_status and not 200 <= code < 300 and code < 500}
    if others:
        found.add(
            "refusals with another status than "
            f"{conflict_status}: " + ", ".join(f"{n}× {c}" for c, n in sorted(others.items())),
            f"a stale version is a conflict: answer {conflict_status}.",
        )
    for label, (_sql, want) in state.items():
        if observed[label] != want:
            found.add(
                f"{label}: expected {want!r}, the database has {observed[label]!r}",
                "the winner's changes (and only the winner's) must be committed, in one transaction.",
            )
    if not replay.failed:
        found.add(
            f"replayed alone afterwards with its now stale version, {outcome(replay)} was accepted",
            "compare the version the client sent with the record's current version and answer 409 when they differ.",
        )
    elif replay.status != conflict_status and not found:
        found.add(
            f"the stale replay was refused with {replay.status}, not {conflict_status}",
            f"a stale version is a conflict: answer {conflict_status}.",
        )
    passed = not found
    codes_text = ", ".join(f"{n}× {c}" for c, n in sorted(codes.items()))
    return verdict(
        passed,
        (
            f"of {len(calls)} concurrent {calls[0]} with the same version, exactly {winners} "
            f"succeed(s) and the others get {conflict_status}"
            + ("; then " + ", ".join(f"{k} = {v!r}" for k, (_, v) in state.items()) if state else "")
        ),
        (
            f"{codes_text}; "
            + ", ".join(f"{k} = {v!r}" for k, v in observed.items())
            + ("" if passed else "\n" + found.text())
        ),
        [] if passed else replay.sql,
        hint=found.hint + " (The SQL below is one request, replayed alone after the burst.)",
    )
