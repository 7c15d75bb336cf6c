"""Checks on how many SQL statements a request ran, and N+1 detection.

A statement whose exact text repeats with different parameters is almost
always a loop issuing one query per row; the message names it and its count.

`queries_bounded` is the check for "no N+1": it compares the same endpoint at
two (or more) data sizes and passes when the number of statements does not grow
with the rows and stays within a budget — whatever the loading strategy
(`selectinload` per level, one `joinedload` chain, or a mix). `max_queries` is a
plain budget for one request; `exact_queries` is for a task that deliberately
asks for a count, and says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from urllib.parse import urlencode

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
    ran = len(sql)
    return verdict(
        passed,
        f"{wanted} {plural(n, 'SQL statement')} for {exchange.call}",
        f"{plural(ran, 'statement')} ({outcome(exchange)})",
        sql,
        hint=""
        if passed
        else first_hint(
            Hint(repeated(sql), lambda: _n_plus_one(sql)),
            Hint(ran > n, "some of these statements can be merged or avoided."),
            # Fewer is not necessarily wrong work: it may be the same work merged differently. Say both.
            default=f"{plural(ran, 'statement')} ran where this task expects exactly {n}; fewer statements than "
            "expected means either part of the work is missing (compare the response with the database) or it "
            "was combined differently than the task asks for — read the task's reason for the count.",
        ),
    )


@check
def max_queries(exchange: Exchange, n: int) -> Verdict:
    return _count_verdict(exchange, n, len(exchange.statements) <= n, "at most")


@check
def exact_queries(exchange: Exchange, n: int) -> Verdict:
    return _count_verdict(exchange, n, len(exchange.statements) == n, "exactly")


def _label(exchange: Exchange) -> str:
    """ "GET /authors?limit=20": the call with its query parameters, so the two sizes can be told apart."""
    params = exchange.call.kwargs.get("params")
    return f"{exchange.call}?{urlencode(params)}" if params else str(exchange.call)


def _bounded_hint(worst: Exchange, grew: tuple[int, int] | None, at_most: int, why: str) -> str:
    """The hint for a failed `queries_bounded`; it only fails on too many, so "fewer" needs no hint."""
    sql = worst.sql
    budget = f"a correct solution needs at most {plural(at_most, 'statement')} here" + (f" ({why})" if why else "")
    growth = f"{grew[0]} -> {grew[1]}" if grew else ""
    return first_hint(
        Hint(repeated(sql), lambda: _n_plus_one(sql)),
        Hint(
            grew,
            f"the number of statements grew with the data ({growth}) although the shape of the response did "
            "not change: something runs once per row (a lazy load, `awaitable_attrs`, a query in a loop). "
            f"Load each level for all rows at once; {budget}.",
        ),
        default=f"{budget}; some of these statements can be merged or avoided.",
    )


@check
def queries_bounded(runs: Sequence[Exchange], at_most: int, why: str = "") -> Verdict:
    """The same endpoint, run at two or more data sizes (smallest first), ran no more statements
    for the larger data than for the smaller, and never more than `at_most`.

    This is the behaviour "no N+1": any strategy whose statement count is constant in the
    number of rows passes (one joined statement, one SELECT per level, ...). `why` says what
    the budget is made of — the most a correct solution needs — and is shown in the hint.

    Choose sizes at which every run returns rows at each level (an eager loader skips its
    statement when there is nothing to load) and stays under `selectinload`'s batch of 500 keys.
    """
    if len(runs) < 2:
        raise ValueError("queries_bounded needs the endpoint run at two data sizes at least")
    counts = [len(ex.statements) for ex in runs]
    grew = next(((a, b) for a, b in pairwise(counts) if b > a), None)
    passed = grew is None and max(counts) <= at_most
    # the evidence: the run with the most statements (the larger one on a tie), where a loop shows best
    worst = max(reversed(runs), key=lambda ex: len(ex.statements))
    sizes = "; ".join(f"{_label(ex)} -> {ex.status}: {plural(len(ex.statements), 'statement')}" for ex in runs)
    return verdict(
        passed,
        f"{runs[0].call} runs at most {plural(at_most, 'SQL statement')}, and no more for more rows",
        f"{sizes}" + ("" if passed else f"; the SQL below is {_label(worst)}'s"),
        worst.sql,
        hint=_bounded_hint(worst, grew, at_most, why),
    )
