"""Checks for a partial batch import: the good rows kept, the bad ones skipped, nothing on failure.

    ex = await probe.request(Call.post("/imports", json=batch))
    batch_survives(ex).require()
    (await rows_exactly(probe, "products", "sku", {"A", "C", "E"}, where="sku LIKE 'G%'")).require()
    (await nothing_kept(probe, Call.post("/imports", json=doomed), tables=["products"])).require()

What is graded is the outcome: which rows were committed, and that the request
ran as one transaction that committed once (no bad item took it down, nothing
was committed early). How the bad items were kept out is the learner's choice: a
savepoint per item, or checking the items before inserting them. The savepoint
trace is shown in the message as evidence only. Row contents come from the
probe's separate connection, so "kept" means committed, not merely visible to
the app's own session.

`savepoint_per_item` is the stricter, form-level check (one SAVEPOINT per item,
rolled back exactly for the bad ones); no lesson grades with it any more.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from autograder.checks.messages import Hint, check, first_hint, outcome, plural, rows, side_by_side, trace, verdict
from autograder.checks.probe import Call, Exchange, Probe
from autograder.checks.verdict import Verdict

PER_ITEM = "`async with session.begin_nested():` around each item"


def expected_item_trace(n_items: int, bad_indexes: Iterable[int]) -> list[str]:
    """BEGIN, (SAVEPOINT, RELEASE | ROLLBACK TO) per item, COMMIT."""
    bad = set(bad_indexes)
    kinds = ["BEGIN"]
    for i in range(n_items):
        kinds += ["SAVEPOINT", "ROLLBACK TO" if i in bad else "RELEASE"]
    return kinds + ["COMMIT"]


def top_level_outcomes(kinds: list[str]) -> list[str]:
    """How each outermost savepoint ended ('RELEASE', 'ROLLBACK TO' or 'open'), in order."""
    outcomes: list[str] = []
    depth = 0
    for kind in kinds:
        if kind == "SAVEPOINT":
            if depth == 0:
                outcomes.append("open")
            depth += 1
        elif kind in ("RELEASE", "ROLLBACK TO") and depth > 0:
            depth -= 1
            if depth == 0:
                outcomes[-1] = kind
        elif kind in ("COMMIT", "ROLLBACK"):
            depth = 0  # the transaction ended: any open savepoint went with it
    return outcomes


def _indexes(items: Iterable[int]) -> str:
    return ", ".join(str(i) for i in sorted(items)) or "none"


def _misplaced(bad: set[int], savepoints: list[str]) -> str:
    """Which items' savepoints ended the wrong way, when there is one per item."""
    rolled = {i for i, k in enumerate(savepoints) if k == "ROLLBACK TO"}
    parts = []
    if bad - rolled:
        parts.append(f"the bad item(s) {_indexes(bad - rolled)} were released instead of rolled back")
    if rolled - bad:
        parts.append(f"the good item(s) {_indexes(rolled - bad)} were rolled back")
    return ("; ".join(parts) or "the trace has extra transaction events") + (
        ". Every statement of an item must run inside its savepoint (flush inside the `async with`), "
        "so that its error belongs to that item and to no other."
    )


@check
def savepoint_per_item(exchange: Exchange, n_items: int, bad_indexes: Iterable[int]) -> Verdict:
    """Each of the `n_items` items had its own savepoint, rolled back exactly for `bad_indexes`,
    and the request committed once."""
    bad = set(bad_indexes)
    expected = expected_item_trace(n_items, bad)
    got = exchange.tx_kinds()
    passed = got == expected and not exchange.failed
    savepoints = top_level_outcomes(got)
    commits = got.count("COMMIT")
    return verdict(
        passed,
        (
            f"{n_items} items, each in its own savepoint: ROLLBACK TO for the bad one(s) "
            f"({_indexes(bad)}), RELEASE for the others, then one COMMIT — {trace(expected)}"
        ),
        f"{outcome(exchange)}; transactions: {trace(got)}" + ("" if passed else "\n" + side_by_side(expected, got)),
        exchange.sql,
        hint=first_hint(
            Hint(
                commits > 1,
                f"{commits} COMMITs: committing per item makes every item its own transaction, so a failure "
                "later in the request can no longer undo them. Use savepoints and let get_db commit once.",
            ),
            Hint(
                not savepoints,
                f"no SAVEPOINT was used, so the first bad item aborted the whole transaction. Put {PER_ITEM}; "
                "a failing item then rolls back to its own savepoint (ROLLBACK TO) and the others survive.",
            ),
            Hint(
                exchange.failed,
                f"the import itself failed ({outcome(exchange)}). A bad item must not fail the batch: "
                f"catch its error around {PER_ITEM}, record it as skipped, and go on.",
            ),
            Hint(
                len(savepoints) == 1 and n_items > 1,
                "one savepoint for the whole batch: the first bad item rolled back every item before it. "
                f"Open the savepoint inside the loop — {PER_ITEM}, not around the loop.",
            ),
            Hint(
                len(savepoints) != n_items,
                f"{len(savepoints)} savepoints for {n_items} items: every item needs exactly one "
                f"savepoint of its own ({PER_ITEM}).",
            ),
            Hint(
                commits == 0,
                "nothing was committed: the outer transaction must commit once, after the loop (get_db does it).",
            ),
            default=lambda: _misplaced(bad, savepoints),
        ),
    )


def outer_events(kinds: list[str]) -> list[str]:
    """The events of the transaction itself (BEGIN, COMMIT, ROLLBACK), savepoints left out."""
    return [k for k in kinds if k in ("BEGIN", "COMMIT", "ROLLBACK")]


def savepoint_evidence(kinds: list[str]) -> str:
    """How the outermost savepoints ended, for the message: evidence, never a requirement."""
    ends = top_level_outcomes(kinds)
    if not ends:
        return "no savepoints"
    rolled = ends.count("ROLLBACK TO")
    return f"{plural(len(ends), 'savepoint')}, {rolled} rolled back (ROLLBACK TO), {len(ends) - rolled} released"


ISOLATE = (
    "Keep every bad item away from the request's transaction: either check the items before inserting "
    "them (lengths, signs, duplicates in the batch, SKUs that exist: one SELECT), or give each item its "
    "own savepoint (`async with session.begin_nested():` around the item) so that its error rolls back "
    "that item only."
)


@check
def batch_survives(exchange: Exchange) -> Verdict:
    """The import answered a success and ran in one transaction that committed once: one BEGIN, one
    COMMIT, no ROLLBACK of the whole transaction. Savepoints are allowed, never required: the trace is
    evidence in the message, the rows and the report are graded by `rows_exactly` and the caller."""
    got = exchange.tx_kinds()
    outer = outer_events(got)
    commits, rollbacks = outer.count("COMMIT"), outer.count("ROLLBACK")
    passed = not exchange.failed and outer == ["BEGIN", "COMMIT"]
    return verdict(
        passed,
        "the import succeeds as one transaction of the request: BEGIN … COMMIT once, never rolled back "
        "as a whole (bad items skipped without ending it; savepoints allowed, not required)",
        f"{outcome(exchange)}; the transaction: {trace(outer)}; {savepoint_evidence(got)}; all events: {trace(got)}",
        exchange.sql,
        hint=first_hint(
            Hint(
                commits > 1,
                f"{commits} COMMITs: committing per item makes every item its own transaction, so a failure "
                "later in the request can no longer undo them. Do not commit in the import; get_db commits once.",
            ),
            Hint(
                exchange.failed,
                f"the import itself failed ({outcome(exchange)}). A bad item must not fail the batch: "
                "record it as skipped and go on. " + ISOLATE,
            ),
            Hint(
                rollbacks > 0,
                "the request's transaction was rolled back during the import: a bad item's error reached "
                "it, and every row written before it in that transaction went too (the caller's as well). " + ISOLATE,
            ),
            Hint(
                commits == 0,
                "nothing was committed: the import must not end the transaction, and get_db commits once "
                "after the route.",
            ),
            default="the request should run as exactly one transaction (one BEGIN, one COMMIT).",
        ),
    )


@check
async def rows_exactly(
    probe: Probe,
    table: str,
    column: str,
    expected: Iterable[object],
    where: str | None = None,
    sql: list[str] | None = None,
) -> Verdict:
    """The committed values of `table.column` (optionally filtered by `where`) are exactly `expected`."""
    want = sorted(expected, key=str)
    quoted = ".".join(f'"{part}"' for part in table.split("."))
    query = f'SELECT "{column}" FROM {quoted}' + (f" WHERE {where}" if where else "")
    got = sorted((r[0] for r in await probe.fetch(query)), key=str)
    missing = sorted(set(want) - set(got), key=str)
    extra = sorted(set(got) - set(want), key=str)
    dupes = sorted({v for v in got if got.count(v) > 1}, key=str)
    problems = [
        text
        for found, text in (
            (missing, f"missing {missing}: good items that were not committed"),
            (extra, f"unexpected {extra}: rows that should have been skipped"),
            (dupes, f"duplicated {dupes}"),
        )
        if found
    ]
    scope = f"{table}.{column}" + (f" WHERE {where}" if where else "")
    return verdict(
        got == want,
        f"{scope} is exactly {want} (committed, seen from another connection)",
        f"{got}" + (f" — {'; '.join(problems)}" if problems else ""),
        sql,
        hint=(
            "the good items must all be committed and the bad ones must leave no row. A good row "
            "missing usually means a bad item took other items down with it (an error in the request's "
            "transaction, one savepoint around the whole loop, or a rollback of the session); an extra "
            "row is one that should not have been committed (a skipped item, or a batch that failed)."
        ),
    )


@check
async def nothing_kept(
    probe: Probe,
    call: Call,
    tables: Iterable[str],
    why: str = "",
    timeout: float = 15,
) -> Verdict:
    """`call` must fail as a whole: the client gets an error and none of `tables` gains or loses a row.

    For failures that are not about one item (the database refusing to wait, a constraint on the
    batch's own audit row): a savepoint per item must not turn them into "skipped".
    """
    tables = list(tables)
    before = {t: await probe.count_rows(t) for t in tables}
    try:
        ex = await asyncio.wait_for(probe.request(call), timeout)
    except TimeoutError:
        return verdict(
            False,
            f"{call} fails{' ' + why if why else ''} and leaves {', '.join(tables)} unchanged",
            f"{call} did not answer within {timeout:g} s",
            hint="the request kept waiting on the database; do not change the lesson's engine settings "
            "(its lock_timeout makes a blocked statement fail instead of waiting forever).",
        )
    after = {t: await probe.count_rows(t) for t in tables}
    changed = {t: (before[t], after[t]) for t in tables if before[t] != after[t]}
    kinds = ex.tx_kinds()
    counts = "; ".join(f"{t} {rows(after[t])} (was {before[t]})" for t in tables)
    return verdict(
        ex.failed and not changed and "COMMIT" not in kinds,
        f"{call} fails{' ' + why if why else ''}: an error status, no COMMIT, {', '.join(tables)} unchanged",
        f"{outcome(ex)}; {counts}; transactions: {trace(kinds)}",
        ex.sql,
        hint=first_hint(
            Hint(
                not ex.failed,
                f"{call} answered {ex.status}, so the failure was swallowed and the rest of the batch was "
                "committed as if all was well. Catch only the errors that are about one item (a constraint "
                "violation: IntegrityError; bad data: SQLSTATE class 22) and let every other exception "
                "propagate, so the request fails and nothing is committed.",
            ),
            Hint(
                changed or "COMMIT" in kinds,
                "the request failed but rows were committed before it did: commit once, at the end of the "
                "request (get_db), never per item or before the last statement that can fail.",
            ),
        ),
    )
