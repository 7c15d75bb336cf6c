"""Checks that need many requests at once: lost updates, overdrafts, row locks.

A read-modify-write bug never shows when requests take turns; it shows when
they overlap. `run_concurrently` sends a list of calls through the app with at
most `concurrency` in flight (each request gets its own session from the app's
own dependency, exactly as in production). `run_transfer_storm` uses it for a
money transfer API and compares the balances PostgreSQL ends up with against
a serial replay of the transfers the app accepted; `transfer_storm` turns that
into a `Verdict`. `takes_row_lock` reads one transfer's SQL and says whether it
was protected: `SELECT ... FOR UPDATE` in a consistent order, or an atomic
`UPDATE ... SET balance = balance - ...`.

The same runner drives lesson 04's demonstration, so what the learner measures
is what the grader measures.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx

from autograder.checks.messages import Findings, app_error, check, verdict
from autograder.checks.probe import Call, Exchange, Probe
from autograder.checks.verdict import Verdict
from autograder.errors import describe
from autograder.observe.sql import Statement, shorten

__all__ = [
    "run_concurrently",
    "random_transfers",
    "StormResult",
    "run_transfer_storm",
    "transfer_storm",
    "takes_row_lock",
    "read_balances",
]

CENT = Decimal("0.01")


async def run_concurrently(
    probe: Probe, calls: Sequence[Call], concurrency: int = 20, stop_after_5xx: int | None = None
) -> list[httpx.Response | None]:
    """Send every call through the app, at most `concurrency` at a time; responses in call order.

    Each request runs its own dependencies (its own session); the only thing
    the requests share is the app, its engine and its pool, as in production.
    With `stop_after_5xx=n`, calls not yet sent once n requests have failed with
    a 5xx are skipped (their response is None): a deadlocking app costs
    PostgreSQL's `deadlock_timeout` (1 s) per deadlock, and a few prove the point.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    gate = asyncio.Semaphore(concurrency)
    failures = 0

    async def one(call: Call) -> httpx.Response | None:
        nonlocal failures
        async with gate:
            if stop_after_5xx is not None and failures >= stop_after_5xx:
                return None
            response = await probe.driver.request(call.method, call.url, **call.kwargs)
            if response.status_code >= 500:
                failures += 1
            return response

    return list(await asyncio.gather(*(one(c) for c in calls)))


def random_transfers(n: int, account_ids: Sequence[int], amounts: Sequence[str], seed: int = 4) -> list[dict[str, Any]]:
    """`n` transfers between distinct accounts, as JSON bodies; the same list for the same seed."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for _ in range(n):
        src, dst = rng.sample(list(account_ids), 2)
        out.append({"from_id": src, "to_id": dst, "amount": rng.choice(list(amounts))})
    return out


async def read_balances(probe: Probe, table: str = "accounts", column: str = "balance") -> dict[int, Decimal]:
    """Committed balances by id, read exactly as PostgreSQL prints them (a float shows its drift)."""
    rows = await probe.fetch(f'SELECT id, "{column}"::text AS amount FROM "{table}" ORDER BY id')
    return {r["id"]: Decimal(r["amount"]) for r in rows}


async def column_type(probe: Probe, table: str, column: str) -> str:
    return (
        await probe.fetchval(
            "SELECT data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = $1 AND column_name = $2",
            table,
            column,
        )
        or "?"
    )


def _money(value: Decimal) -> str:
    """Cents as cents; anything finer (a float's drift) in full, never in E-notation."""
    return f"{value:,.2f}" if value == value.quantize(CENT) else f"{value:f}"


@dataclass
class StormResult:
    """What a storm of transfers did: balances before/after/expected and every response."""

    transfers: list[dict[str, Any]]
    responses: list[httpx.Response | None]  # None: not sent (the storm stopped early)
    before: dict[int, Decimal]
    after: dict[int, Decimal]
    concurrency: int
    seconds: float
    errors: list[BaseException] = field(default_factory=list)

    @property
    def statuses(self) -> Counter[int | str]:
        return Counter(r.status_code if r is not None else "not sent" for r in self.responses)

    @property
    def accepted(self) -> list[dict[str, Any]]:
        return [t for t, r in zip(self.transfers, self.responses, strict=True) if r is not None and r.status_code < 300]

    @property
    def expected(self) -> dict[int, Decimal]:
        """A serial replay of the accepted transfers: the order does not change the sums."""
        balances = dict(self.before)
        for t in self.accepted:
            amount = Decimal(str(t["amount"]))
            balances[t["from_id"]] = balances.get(t["from_id"], Decimal(0)) - amount
            balances[t["to_id"]] = balances.get(t["to_id"], Decimal(0)) + amount
        return balances

    @property
    def drift(self) -> dict[int, Decimal]:
        expected = self.expected
        return {k: self.after.get(k, Decimal(0)) - expected[k] for k in expected}

    @property
    def total_before(self) -> Decimal:
        return sum(self.before.values(), Decimal(0))

    @property
    def total_after(self) -> Decimal:
        return sum(self.after.values(), Decimal(0))

    def lost_updates(self, amount: Decimal | str | None = None) -> int:
        """At least this many writes were lost (sum of |drift| in units of `amount`).

        With every transfer moving the same `amount`, each lost debit or credit
        shifts one balance by exactly `amount`; a lost debit and a lost credit on
        the same account cancel, so this is a lower bound.
        """
        unit = Decimal(str(amount)) if amount is not None else Decimal(str(self.transfers[0]["amount"]))
        return int(sum((abs(d) for d in self.drift.values()), Decimal(0)) / unit)

    def table(self) -> str:
        expected = self.expected
        lines = [f"  {'account':>7}  {'before':>10}  {'expected':>10}  {'actual':>12}  {'drift':>10}"]
        for k in expected:
            d = self.after.get(k, Decimal(0)) - expected[k]
            lines.append(
                f"  {k:>7}  {_money(self.before.get(k, Decimal(0))):>10}  {_money(expected[k]):>10}  "
                f"{_money(self.after.get(k, Decimal(0))):>12}  {('+' if d > 0 else '') + _money(d):>10}"
            )
        lines.append(
            f"  {'total':>7}  {_money(self.total_before):>10}  {_money(self.total_before):>10}  "
            f"{_money(self.total_after):>12}"
        )
        return "\n".join(lines)

    def summary(self) -> str:
        codes = ", ".join(f"{n}× {code}" for code, n in sorted(self.statuses.items(), key=lambda kv: str(kv[0])))
        return (
            f"{len(self.transfers)} transfers, {self.concurrency} at a time, {self.seconds:.2f} s: {codes}; "
            f"total {_money(self.total_before)} -> {_money(self.total_after)}"
        )


async def run_transfer_storm(
    probe: Probe,
    transfers: Sequence[dict[str, Any]],
    *,
    concurrency: int = 20,
    url: str = "/transfers",
    table: str = "accounts",
    column: str = "balance",
    stop_after_5xx: int | None = None,
) -> StormResult:
    """POST every transfer to `url` with `concurrency` requests in flight; balances before and after."""
    before = await read_balances(probe, table, column)
    errors_at = len(probe.driver.errors)
    started = time.perf_counter()
    responses = await run_concurrently(
        probe, [Call.post(url, json=t) for t in transfers], concurrency, stop_after_5xx=stop_after_5xx
    )
    seconds = time.perf_counter() - started
    after = await read_balances(probe, table, column)
    return StormResult(list(transfers), responses, before, after, concurrency, seconds, probe.driver.errors[errors_at:])


@check
async def transfer_storm(
    probe: Probe,
    transfers: Sequence[dict[str, Any]],
    *,
    concurrency: int = 20,
    url: str = "/transfers",
    table: str = "accounts",
    column: str = "balance",
    min_accepted: float = 0.1,
) -> Verdict:
    """Concurrent transfers keep the books: total unchanged, nobody below zero, balances equal to a
    serial replay of the accepted transfers, every refusal a 4xx, and money stored exactly.

    The first transfer runs alone first, so the verdict can show the SQL of one transfer;
    the rest run concurrently.
    """
    transfers = list(transfers)
    if len(transfers) < 2:
        raise ValueError("a storm needs at least two transfers")
    before = await read_balances(probe, table, column)
    sample = await probe.request(Call.post(url, json=transfers[0]))
    storm = await run_transfer_storm(
        probe, transfers[1:], concurrency=concurrency, url=url, table=table, column=column, stop_after_5xx=3
    )
    result = StormResult(
        transfers,
        [sample.response, *storm.responses],
        before,
        storm.after,
        concurrency,
        storm.seconds,
        list(sample.errors) + storm.errors,
    )
    kind = await column_type(probe, table, column)

    found = Findings()
    server_errors = [r for r in result.responses if r is not None and r.status_code >= 500]
    skipped = sum(r is None for r in result.responses)
    negative = {k: v for k, v in result.after.items() if v < 0}
    drift = {k: d for k, d in result.drift.items() if d != 0}
    accepted = len(result.accepted)
    if kind in ("double precision", "real"):
        found.add(
            f"{table}.{column} is stored as {kind}",
            "money must be exact: declare the column `Numeric(12, 2)` (Python `Decimal`), not Float — "
            "binary floating point cannot store 0.10 exactly, so balances drift by fractions of a cent.",
        )
    if server_errors:
        deadlocks = [e for e in result.errors if "deadlock" in describe(e).lower()]
        found.add(
            f"{len(server_errors)} transfer(s) failed with a 5xx"
            + (f" ({app_error(result.errors[0])})" if result.errors else "")
            + (f"; the remaining {skipped} were not sent" if skipped else ""),
            "two transactions locked the same two accounts in opposite orders and PostgreSQL broke "
            "the deadlock (SQLSTATE 40P01) by failing one of them. Lock the rows in one global order: "
            "by id, lowest first, whichever account is the source."
            if deadlocks
            else "a refused transfer must be a 4xx answer (409 for insufficient funds), never a crash.",
        )
    if result.total_after != result.total_before:
        found.add(f"the total changed from {_money(result.total_before)} to {_money(result.total_after)}")
    if negative:
        found.add(
            "negative balance(s): " + ", ".join(f"account {k} = {_money(v)}" for k, v in negative.items()),
            "two transfers both saw enough money and both debited. The balance check and the debit must "
            "be one atomic step: lock the row first (`with_for_update()`) and then check, or let the "
            f"UPDATE check it: `... WHERE id = :id AND {column} >= :amount RETURNING {column}`.",
        )
    if drift:
        found.add(
            "balances differ from a serial replay of the accepted transfers: "
            + ", ".join(f"account {k} {'+' if d > 0 else ''}{_money(d)}" for k, d in drift.items()),
            "lost updates: two requests read the same balance, each computed a new one in Python, and "
            "the second write overwrote the first. Either read the rows with `SELECT ... FOR UPDATE` "
            "(`select(...).with_for_update()`, both accounts, ordered by id) so the second request waits, "
            f"or compute in the database: "
            f"`UPDATE {table} SET {column} = {column} - :amount ... RETURNING {column}`.",
        )
    if accepted < max(1, int(min_accepted * len(transfers))) and not server_errors:
        found.add(
            f"only {accepted} of {len(transfers)} transfers were accepted",
            "most of these transfers are affordable; a transfer should be refused only when the source "
            "account cannot cover it.",
        )
    passed = not found
    return verdict(
        passed,
        (
            f"{len(transfers)} transfers ({concurrency} at a time) keep the total at "
            f"{_money(result.total_before)}, leave no balance below zero, end with the balances a serial "
            f"replay of the accepted transfers gives, and refuse only with 4xx"
        ),
        result.summary() + ("" if passed else "\n" + found.text()) + "\n" + result.table(),
        sample.sql,
        hint=found.hint + " (The SQL below is one transfer run on its own.)",
    )


# -- row locks ---------------------------------------------------------------

_FOR_UPDATE = re.compile(r"\bFOR\s+(NO\s+KEY\s+)?UPDATE\b", re.I)
_ORDER_BY = re.compile(r"\bORDER\s+BY\b", re.I)


def _relative_set(table: str, column: str) -> re.Pattern[str]:
    col = rf'(?:"?{re.escape(table)}"?\.)?"?{re.escape(column)}"?'
    return re.compile(rf"\bSET\b.*?{col}\s*=\s*\(?\s*{col}\s*[-+]", re.I | re.S)


def _touches(sql: str, table: str) -> bool:
    return re.search(rf'\b"?{re.escape(table)}"?\b', sql, re.I) is not None


def _int_params(params: Any) -> list[int]:
    values = params.values() if isinstance(params, dict) else (params or ())
    return [v for v in values if isinstance(v, int) and not isinstance(v, bool)]


@check
def takes_row_lock(exchange: Exchange, table: str = "accounts", column: str = "balance") -> Verdict:
    """One transfer's SQL protects its read-modify-write.

    Passes when the rows are read with `SELECT ... FOR UPDATE` before they are
    updated (several locking statements must lock ascending ids; one statement
    locking several rows needs ORDER BY), or when every UPDATE of `column` is
    computed by the database (`SET balance = balance - ...`). Rejects a plain
    SELECT followed by an UPDATE that writes a value computed in Python.
    """
    statements = exchange.statements
    updates = [s for s in statements if s.kind == "UPDATE" and _touches(s.sql, table)]
    relative = _relative_set(table, column)
    locks: list[Statement] = []
    found = Findings()
    for s in statements:
        if s.kind == "SELECT" and _touches(s.sql, table) and _FOR_UPDATE.search(s.sql):
            locks.append(s)
    first_update = statements.index(updates[0]) if updates else len(statements)
    locked_before_write = [s for s in locks if statements.index(s) < first_update]
    absolute = [s for s in updates if not relative.search(s.sql)]

    if not updates and not locks:
        found.add(f"no UPDATE of {table} ran", f"{exchange.call} was expected to move money; did it succeed?")
    elif absolute and not locked_before_write:
        found.add(
            f"{table}.{column} was written with a value computed in Python, from a plain SELECT that took no lock",
            "between your SELECT and your UPDATE another request can change the balance, and your UPDATE "
            "then overwrites it (a lost update). Lock the rows when you read them: "
            f"`select(Account).where(...).order_by(Account.id).with_for_update()` — or let the database "
            "compute: "
            f"`update(Account).values({column}=Account.{column} - amount)...returning(Account.{column})`.",
        )
    elif locked_before_write:
        single = [s for s in locked_before_write if len(_int_params(s.params)) == 1]
        ids = [_int_params(s.params)[0] for s in single]
        multi = [s for s in locked_before_write if len(_int_params(s.params)) > 1]
        if len(ids) > 1 and ids != sorted(ids):
            found.add(
                f"rows were locked one statement at a time in the order {ids}",
                "two opposite transfers (A→B and B→A) each lock their source first and then wait for each "
                "other forever; PostgreSQL kills one with a deadlock error (SQLSTATE 40P01). Lock both "
                "accounts in one global order: sorted by id, whichever is the source.",
            )
        elif any(not _ORDER_BY.search(s.sql) for s in multi):
            found.add(
                "one statement locked several rows without ORDER BY",
                "rows are locked in the order the query returns them; without ORDER BY that order is up "
                "to the planner, so two transfers can lock in opposite orders and deadlock. Add "
                "`.order_by(Account.id)` before `.with_for_update()`.",
            )
    passed = not found
    if locked_before_write:
        how = f"{len(locked_before_write)} SELECT ... FOR UPDATE before the first UPDATE"
    elif updates and not absolute:
        how = f"{len(updates)} UPDATE(s) computing {column} in the database ({shorten(updates[0].sql, 90)})"
    else:
        how = f"{len(updates)} UPDATE(s) of {table}, {len(absolute)} writing a value computed in Python, no FOR UPDATE"
    return verdict(
        passed,
        (
            f"{exchange.call} locks what it reads (SELECT ... FOR UPDATE, rows in id order) or updates "
            f"atomically (SET {column} = {column} - ...)"
        ),
        how + ("" if passed else "; " + found.text()),
        exchange.sql,
        hint=found.hint,
    )
