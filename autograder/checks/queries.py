"""Checks on how many SQL statements one request ran, and N+1 detection.

A statement whose exact text repeats with different parameters is almost
always a loop issuing one query per row; the message names it and its count.
"""

from __future__ import annotations

from autograder.checks.messages import Hint, check, first_hint, outcome, plural, verdict
from autograder.checks.probe import Exchange
from autograder.checks.verdict import Verdict
from autograder.observe.sql import repeated, shorten


def _n_plus_one(sql: list[str]) -> str:
    text, times = repeated(sql)[0]
    return (
        f"N+1: this statement ran {times} times: {shorten(text, 200)} — load the related "
        "rows in the first query instead, e.g. `.options(selectinload(Parent.children))`."
    )


def _count_verdict(exchange: Exchange, n: int, passed: bool, wanted: str) -> Verdict:
    sql = exchange.sql
    return verdict(
        passed,
        f"{wanted} {plural(n, 'SQL statement')} for {exchange.call}",
        f"{plural(len(sql), 'statement')} ({outcome(exchange)})",
        sql,
        hint=""
        if passed
        else first_hint(
            Hint(repeated(sql), lambda: _n_plus_one(sql)),
            Hint(len(sql) > n, "some of these statements can be merged or avoided."),
            default="fewer statements ran than the task needs; is part of the work missing?",
        ),
    )


@check
def max_queries(exchange: Exchange, n: int) -> Verdict:
    return _count_verdict(exchange, n, len(exchange.statements) <= n, "at most")


@check
def exact_queries(exchange: Exchange, n: int) -> Verdict:
    return _count_verdict(exchange, n, len(exchange.statements) == n, "exactly")
