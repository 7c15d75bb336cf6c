"""Check that a paginated listing is stable while other clients insert rows.

`keyset_pages_stable` walks a newest-first listing page by page through the
app, exactly as a client would (first `GET url?limit=N`, then
`GET url?limit=N&after=<cursor>` with the cursor the previous page returned),
and between two pages sends `insert` — another client adding a row. The rows
that existed when the walk began are read first on the probe's separate
connection; the walk must return each of them exactly once, in order, never a
row the database says must not be listed (e.g. soft-deleted), at most N per
page, and within a statement budget per page (no COUNT, no N+1).

Offset pagination fails it for real: a row inserted at the top shifts every
later row down by one, so the next page repeats the previous page's last row.

The page contract: a JSON object with the rows under `items_key` (each with an
"id") and the next cursor under `cursor_key` (null on the last page).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

from autograder.checks.messages import Findings, Hint, check, first_hint, outcome, verdict
from autograder.checks.probe import Call, Probe
from autograder.checks.verdict import Verdict

__all__ = ["keyset_pages_stable"]


def _ids(values: Sequence[int], limit: int = 12) -> str:
    values = list(values)
    shown = ", ".join(str(v) for v in values[:limit])
    return f"[{shown}{', ...' if len(values) > limit else ''}]"


@check
async def keyset_pages_stable(
    probe: Probe,
    url: str,
    *,
    table: str,
    where: str | None = None,
    limit: int = 5,
    insert: Call | None = None,
    page_budget: int = 1,
    items_key: str = "items",
    cursor_key: str = "next_after",
    cursor_param: str = "after",
) -> Verdict:
    """Walk `url` newest first while `insert` adds a row before every page but the first.

    `table`/`where` say which rows the listing must return (read on the probe's own
    connection before the walk: `SELECT id FROM table WHERE where ORDER BY id DESC`).
    """
    quoted = ".".join(f'"{part}"' for part in table.split("."))
    rows = await probe.fetch(f"SELECT id FROM {quoted}" + (f" WHERE {where}" if where else "") + " ORDER BY id DESC")
    expected = [r["id"] for r in rows]
    hidden = {
        r["id"]
        for r in await probe.fetch(f"SELECT id FROM {quoted}" + (f" WHERE NOT ({where})" if where else " WHERE false"))
    }
    max_pages = len(expected) // max(limit, 1) + 3
    seen: list[int] = []
    pages: list[list[int]] = []
    found = Findings()
    sql: list[str] = []
    worst_statements = 0
    cursor: Any = None
    inserted = 0
    for page_no in range(1, max_pages + 1):
        if page_no > 1 and insert is not None:
            added = await probe.request(insert)
            if added.failed:
                found.add(
                    f"the insert between pages failed: {outcome(added)}",
                    f"{insert} must succeed for this check to run; look at its error.",
                )
                break
            inserted += 1
        params: dict[str, Any] = {"limit": limit}
        if cursor is not None:
            params[cursor_param] = cursor
        ex = await probe.request(Call.get(url, params=params))
        if ex.failed or ex.errors:
            found.add(f"page {page_no} failed: {outcome(ex)}", "every page must answer 200; look at the error.")
            sql = ex.sql
            break
        if len(ex.statements) > worst_statements:
            worst_statements, sql = len(ex.statements), ex.sql
        body = ex.response.json()
        try:
            page = [item["id"] for item in body[items_key]]
            cursor = body[cursor_key]
        except (KeyError, TypeError):
            found.add(
                f'page {page_no} is not {{"{items_key}": [{{"id": ...}}, ...], '
                f'"{cursor_key}": ...}}: {ex.response.text[:160]}',
                f'answer with the rows under "{items_key}" and the next cursor under "{cursor_key}".',
            )
            break
        pages.append(page)
        seen.extend(page)
        if len(page) > limit:
            found.add(f"page {page_no} has {len(page)} rows, more than limit={limit}")
        if cursor is None or not page:
            break
    else:
        found.add(
            f"the walk did not end after {max_pages} pages (the cursor never became null)",
            f'return "{cursor_key}": null on the last page (fewer than `limit` rows).',
        )

    twice = sorted((i for i, n in Counter(seen).items() if n > 1), reverse=True)
    missing = [i for i in expected if i not in set(seen)]
    forbidden = sorted({i for i in seen if i in hidden}, reverse=True)
    out_of_order = any(b >= a for a, b in pairwise(seen))
    for problem, when in (
        (f"rows listed twice: {_ids(twice)}", twice),
        (f"rows never listed: {_ids(missing)}", missing),
        (f"rows listed that must not be: {_ids(forbidden)} (they do not match {where})", forbidden),
        ("rows are not in descending id order across pages", out_of_order and not twice),
        (f"a page ran {worst_statements} SQL statements (budget {page_budget})", worst_statements > page_budget),
    ):
        if when:
            found.add(problem)
    found.suggest(
        first_hint(
            Hint(
                twice or (missing and inserted),
                "the cursor must name the last row the client saw, not a position: an OFFSET counts rows, "
                "and a row inserted meanwhile shifts every later row by one, so a page repeats or skips a "
                "row. Keyset: `WHERE id < :after ORDER BY id DESC LIMIT :limit`, and the next cursor is the "
                "last row's id (strictly less than, or the boundary row comes back).",
            ),
            Hint(
                forbidden,
                f"the listing returned rows the database marks as excluded ({where}). Soft-deleted rows "
                "must be filtered by default, e.g. with `with_loader_criteria` in a `do_orm_execute` "
                "event on the session class.",
            ),
            Hint(missing, "some rows never appeared: check the cursor you return and the comparison you filter with."),
            Hint(
                worst_statements > page_budget,
                "a page must be one statement: no COUNT(*) for a total (the cursor says whether there is "
                "more), and related rows loaded in the same query (`joinedload` for a many-to-one) instead "
                "of one query per row.",
            ),
            Hint(out_of_order, "order the listing by the key the cursor uses: `ORDER BY id DESC`."),
        )
    )
    passed = not found
    return verdict(
        passed,
        (
            f"GET {url} in pages of {limit} lists each of the {len(expected)} rows of {table}"
            + (f" WHERE {where}" if where else "")
            + " exactly once, newest first, while another client "
            f"inserts a row before each page; at most {page_budget} statement(s) per page"
        ),
        (
            f"{len(pages)} page(s) with {len(seen)} rows, {inserted} insert(s) in between; ids listed "
            f"{_ids(seen, 30)}" + ("" if passed else "\n" + found.text())
        ),
        sql if not passed else [],
        hint=found.hint + (" (The SQL below is the costliest page.)" if sql else ""),
    )
