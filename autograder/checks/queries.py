"""Checks on how many SQL statements one request ran, and N+1 detection.

A statement whose exact text repeats with different parameters is almost
always a loop issuing one query per row; the message names it and its count.
"""

from __future__ import annotations

from autograder.checks._describe import outcome
from autograder.checks.probe import Exchange
from autograder.checks.verdict import Verdict
from autograder.observe.sql import repeated, shorten


def _count_verdict(check: str, exchange: Exchange, n: int, passed: bool, wanted: str) -> Verdict:
    sql = exchange.sql
    hint = ""
    if not passed:
        worst = repeated(sql)
        if worst:
            text, times = worst[0]
            hint = (f"N+1: this statement ran {times} times: {shorten(text, 200)} — load the related "
                    "rows in the first query instead, e.g. `.options(selectinload(Parent.children))`.")
        elif len(sql) > n:
            hint = "some of these statements can be merged or avoided."
        else:
            hint = "fewer statements ran than the task needs; is part of the work missing?"
    return Verdict(
        check=check,
        passed=passed,
        expected=f"{wanted} {n} SQL statement{'s' if n != 1 else ''} for {exchange.call}",
        actual=f"{len(sql)} statement{'s' if len(sql) != 1 else ''} ({outcome(exchange)})",
        sql=sql,
        hint=hint,
    )


def max_queries(exchange: Exchange, n: int) -> Verdict:
    return _count_verdict("max_queries", exchange, n, len(exchange.statements) <= n, "at most")


def exact_queries(exchange: Exchange, n: int) -> Verdict:
    return _count_verdict("exact_queries", exchange, n, len(exchange.statements) == n, "exactly")
