"""Checks about commit and rollback: what a request leaves behind for the next user.

Row counts come from the probe's separate connection, so "unchanged" means
"nothing was committed", not "this session cannot see it". The transaction
trace explains *why* when a count is wrong.
"""

from __future__ import annotations

from autograder.checks.messages import Hint, check, first_hint, outcome, plural, rows, side_by_side, trace, verdict
from autograder.checks.probe import Call, Exchange, Probe
from autograder.checks.verdict import Verdict

__all__ = ["rolled_back", "committed_once", "savepoint_trace", "writes_without_reading", "side_by_side"]

WRITES = ("UPDATE", "INSERT", "DELETE")


@check
async def rolled_back(probe: Probe, call: Call, table: str, where: str | None = None) -> Verdict:
    """A failing request must leave `table` as it was, and commit nothing."""
    scope = table + (f" WHERE {where}" if where else "")
    before = await probe.count_rows(table, where)
    ex = await probe.request(call)
    after = await probe.count_rows(table, where)
    kinds = ex.tx_kinds()
    committed = "COMMIT" in kinds
    return verdict(
        ex.failed and after == before and not committed,
        f"{call} fails and {scope} keeps its {rows(before)}, with no COMMIT",
        f"{outcome(ex)}; {scope} now has {rows(after)} (was {before}); transactions: {trace(kinds)}",
        ex.sql,
        hint=first_hint(
            Hint(
                ex.error_after_response,
                f"the client got {ex.status} but the app failed afterwards: the session's commit ran "
                "after the response was sent (FastAPI's default dependency scope). Declare the "
                'dependency with `Depends(get_db, scope="function")` so its commit runs before the response.',
            ),
            Hint(
                not ex.failed,
                f"{call} was expected to fail (4xx/5xx) for this input, but it succeeded; "
                "validate the input and raise HTTPException before anything is committed.",
            ),
            Hint(
                committed or after != before,
                "the request failed but its changes were committed. Commit only once the route has "
                "succeeded: `yield session` then `await session.commit()` inside "
                "`async with SessionLocal() as session:` — never in `finally`, and never in the route "
                "before it can still fail.",
            ),
        ),
    )


@check
async def committed_once(probe: Probe, call: Call, table: str, expect_new_rows: int = 1) -> Verdict:
    """A successful request commits exactly once and its rows are visible to others."""
    before = await probe.count_rows(table)
    ex = await probe.request(call)
    after = await probe.count_rows(table)
    kinds = ex.tx_kinds()
    commits = kinds.count("COMMIT")
    new = after - before
    return verdict(
        not ex.failed and not ex.errors and commits == 1 and new == expect_new_rows,
        f"{call} succeeds with exactly one COMMIT and {table} gains {rows(expect_new_rows)}",
        f"{outcome(ex)}; {commits} COMMIT(s); {table} gained {rows(new)}; transactions: {trace(kinds)}",
        ex.sql,
        hint=first_hint(
            Hint(
                ex.error_after_response,
                f"the client got {ex.status} but the commit failed after the response was sent; declare "
                'the dependency with `Depends(get_db, scope="function")` so a failed commit becomes an error response.',
            ),
            Hint(ex.failed, f"{call} was expected to succeed; look at the error above."),
            Hint(
                commits == 0,
                "nothing was committed, so the changes were rolled back when the session closed: "
                "call `await session.commit()` after `yield session` in get_db.",
            ),
            Hint(
                commits > 1,
                "one request should be one transaction: commit once, in get_db after the route "
                "returns, not after every change.",
            ),
            Hint(new != expect_new_rows, f"the commit happened but {table} gained {rows(new)}, not {expect_new_rows}."),
        ),
    )


@check
def savepoint_trace(exchange: Exchange, expected: list[str]) -> Verdict:
    """The request's transaction events equal `expected`, e.g. BEGIN, SAVEPOINT, RELEASE, ..."""
    got = exchange.tx_kinds()
    passed = got == list(expected)
    return verdict(
        passed,
        trace(list(expected)),
        trace(got) + ("" if passed else "\n" + side_by_side(list(expected), got)),
        exchange.sql,
        hint="wrap each item in its own `async with session.begin_nested():` so that a failing item "
        "rolls back to its savepoint (ROLLBACK TO) instead of taking the whole transaction with it.",
    )


@check
def writes_without_reading(exchange: Exchange, at_most: int, why: str = "") -> Verdict:
    """A successful request changed its rows without reading them into Python first: no SELECT ran
    before its last write, and it ran at most `at_most` statements.

    That is what "let the database decide" looks like from the database: a guarded
    `UPDATE ... WHERE balance >= :amount RETURNING balance` checks, computes and writes under the
    row lock in one step, so there is no window between a read and the write that depends on it.
    How many UPDATEs (one per row, or one for both) and a SELECT *after* the writes are free
    choices, within the budget; `why` says what the budget is made of.
    """
    statements = exchange.statements
    kinds = [s.kind for s in statements]
    last_write = max((i for i, kind in enumerate(kinds) if kind in WRITES), default=-1)
    reads_first = [s for s in statements[: max(last_write, 0)] if s.kind == "SELECT"]
    ran = len(statements)
    passed = not exchange.failed and last_write >= 0 and not reads_first and ran <= at_most
    budget = f"a correct solution needs at most {plural(at_most, 'statement')}" + (f" ({why})" if why else "")
    return verdict(
        passed,
        f"{exchange.call} succeeds, reads nothing before it writes, in at most {plural(at_most, 'SQL statement')}",
        f"{outcome(exchange)}; {plural(ran, 'statement')}: {', '.join(kinds) or '(none)'}"
        + (f"; {plural(len(reads_first), 'SELECT')} before the last write" if reads_first else ""),
        exchange.sql,
        hint=first_hint(
            Hint(exchange.failed, f"{exchange.call} was expected to succeed for this input; look at the error above."),
            Hint(
                last_write < 0,
                "nothing was written: the request must change the rows in the database, e.g. "
                "`update(Account).where(...).values(balance=Account.balance - amount).returning(Account.balance)`.",
            ),
            Hint(
                reads_first,
                "a SELECT ran before the write it informs: between the two another request can change the row "
                "(or, with FOR UPDATE, it is the locking approach of the other exercise). Put the condition in "
                "the UPDATE's WHERE (`Account.balance >= amount`) and take the new value from "
                "`.returning(Account.balance)`: no row back means the condition failed.",
            ),
            default=f"{budget}; read the new values from `.returning(...)` instead of selecting them again.",
        ),
    )
