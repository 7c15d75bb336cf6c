"""Checks about commit and rollback: what a request leaves behind for the next user.

Row counts come from the probe's separate connection, so "unchanged" means
"nothing was committed", not "this session cannot see it". The transaction
trace explains *why* when a count is wrong.
"""

from __future__ import annotations

from autograder.checks._describe import outcome, rows, trace
from autograder.checks.probe import Call, Exchange, Probe
from autograder.checks.verdict import Verdict


async def rolled_back(probe: Probe, call: Call, table: str, where: str | None = None) -> Verdict:
    """A failing request must leave `table` as it was, and commit nothing."""
    scope = table + (f" WHERE {where}" if where else "")
    before = await probe.count_rows(table, where)
    ex = await probe.request(call)
    after = await probe.count_rows(table, where)
    kinds = ex.tx_kinds()
    committed = "COMMIT" in kinds
    passed = ex.failed and after == before and not committed
    if ex.error_after_response:
        hint = (f"the client got {ex.status} but the app failed afterwards: the session's commit ran "
                "after the response was sent (FastAPI's default dependency scope). Declare the "
                "dependency with `Depends(get_db, scope=\"function\")` so its commit runs before the response.")
    elif not ex.failed:
        hint = (f"{call} was expected to fail (4xx/5xx) for this input, but it succeeded; "
                "validate the input and raise HTTPException before anything is committed.")
    elif committed or after != before:
        hint = ("the request failed but its changes were committed. Commit only once the route has "
                "succeeded: `yield session` then `await session.commit()` inside "
                "`async with SessionLocal() as session:` — never in `finally`, and never in the route "
                "before it can still fail.")
    else:
        hint = ""
    return Verdict(
        check="rolled_back",
        passed=passed,
        expected=f"{call} fails and {scope} keeps its {rows(before)}, with no COMMIT",
        actual=f"{outcome(ex)}; {scope} now has {rows(after)} (was {before}); transactions: {trace(kinds)}",
        sql=ex.sql,
        hint=hint,
    )


async def committed_once(probe: Probe, call: Call, table: str, expect_new_rows: int = 1) -> Verdict:
    """A successful request commits exactly once and its rows are visible to others."""
    before = await probe.count_rows(table)
    ex = await probe.request(call)
    after = await probe.count_rows(table)
    kinds = ex.tx_kinds()
    commits = kinds.count("COMMIT")
    new = after - before
    passed = not ex.failed and not ex.errors and commits == 1 and new == expect_new_rows
    if ex.error_after_response:
        hint = (f"the client got {ex.status} but the commit failed after the response was sent; declare "
                "the dependency with `Depends(get_db, scope=\"function\")` so a failed commit becomes an error response.")
    elif ex.failed:
        hint = f"{call} was expected to succeed; look at the error above."
    elif commits == 0:
        hint = ("nothing was committed, so the changes were rolled back when the session closed: "
                "call `await session.commit()` after `yield session` in get_db.")
    elif commits > 1:
        hint = ("one request should be one transaction: commit once, in get_db after the route "
                "returns, not after every change.")
    elif new != expect_new_rows:
        hint = f"the commit happened but {table} gained {rows(new)}, not {expect_new_rows}."
    else:
        hint = ""
    return Verdict(
        check="committed_once",
        passed=passed,
        expected=f"{call} succeeds with exactly one COMMIT and {table} gains {rows(expect_new_rows)}",
        actual=f"{outcome(ex)}; {commits} COMMIT(s); {table} gained {rows(new)}; transactions: {trace(kinds)}",
        sql=ex.sql,
        hint=hint,
    )


def savepoint_trace(exchange: Exchange, expected: list[str]) -> Verdict:
    """The request's transaction events equal `expected`, e.g. BEGIN, SAVEPOINT, RELEASE, ..."""
    got = exchange.tx_kinds()
    passed = got == list(expected)
    return Verdict(
        check="savepoint_trace",
        passed=passed,
        expected=trace(list(expected)),
        actual=trace(got) + ("" if passed else "\n" + side_by_side(list(expected), got)),
        sql=exchange.sql,
        hint="" if passed else (
            "wrap each item in its own `async with session.begin_nested():` so that a failing item "
            "rolls back to its savepoint (ROLLBACK TO) instead of taking the whole transaction with it."
        ),
    )


def side_by_side(expected: list[str], got: list[str]) -> str:
    """Two aligned columns, `!` marking the first rows that differ."""
    width = max([len("expected")] + [len(k) for k in expected])
    lines = [f"      {'expected':<{width}}   got"]
    for i in range(max(len(expected), len(got))):
        e = expected[i] if i < len(expected) else "-"
        g = got[i] if i < len(got) else "-"
        mark = " " if e == g else "!"
        lines.append(f"  {mark}{i + 1:>2} {e:<{width}}   {g}")
    return "\n".join(lines)
