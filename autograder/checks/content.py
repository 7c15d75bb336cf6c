"""Check that a nested JSON response holds exactly the rows the database holds.

A listing of parents with their children (authors → books → reviews) can be
wrong in ways a statement count cannot see: a filtered listing that returns
every child instead of the matching ones (the collection was loaded apart from
the filtered join, or was already in the session's identity map), a LIMIT on a
joined query that cuts a parent's children short, an outer join that keeps
parents with nothing to show.

`matches_database` reads the truth with the author's own SQL on the probe's
verification connection (committed data, not the app's session) and compares
it, as sets of keys, with what the response says:

    ex = await probe.request(Call.get("/authors/recent", params={"since": 2020}))
    (await matches_database(
        probe, ex,
        "SELECT a.id, b.id FROM authors a JOIN books b ON b.author_id = a.id WHERE b.year >= 2020",
        nested=("books",),
    )).require()

Each SQL row is one path from a top-level object down the `nested` lists:
(author id, book id[, review id ...]); trailing NULLs (a LEFT JOIN that found
no child) mean "this object has an empty list".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from autograder.checks.messages import Hint, check, first_hint, outcome, plural, verdict
from autograder.checks.probe import Exchange, Probe
from autograder.checks.verdict import Verdict

MAX_EXAMPLES = 3


class _Shape(Exception):
    """The response is not the nested list of objects the check was told to expect."""


def _tree_from_rows(rows: Sequence[Sequence[Any]]) -> dict[Any, set[tuple[Any, ...]]]:
    tree: dict[Any, set[tuple[Any, ...]]] = {}
    for row in rows:
        values = list(row)
        while values and values[-1] is None:
            values.pop()
        if not values:
            continue
        tree.setdefault(values[0], set()).add(tuple(values[1:]))
    return tree


def _paths(obj: Any, nested: Sequence[str], key: str, where: str) -> set[tuple[Any, ...]]:
    """Every key path below `obj` along `nested`; () for an empty list."""
    if not nested:
        return {()}
    name, rest = nested[0], nested[1:]
    if not isinstance(obj, dict) or not isinstance(obj.get(name), list):
        raise _Shape(f"{where} has no list {name!r}")
    children = obj[name]
    if not children:
        return {()}
    found: set[tuple[Any, ...]] = set()
    for i, child in enumerate(children):
        if not isinstance(child, dict) or key not in child:
            raise _Shape(f"{where}.{name}[{i}] has no {key!r}")
        for below in _paths(child, rest, key, f"{where}.{name}[{i}]"):
            found.add((child[key], *below))
    return found


def _tree_from_response(body: Any, nested: Sequence[str], key: str) -> dict[Any, set[tuple[Any, ...]]]:
    if not isinstance(body, list):
        raise _Shape(f"the response is {type(body).__name__}, not a list")
    tree: dict[Any, set[tuple[Any, ...]]] = {}
    for i, obj in enumerate(body):
        if not isinstance(obj, dict) or key not in obj:
            raise _Shape(f"item [{i}] has no {key!r}")
        tree.setdefault(obj[key], set()).update(_paths(obj, nested, key, f"[{i}]"))
    return tree


def _order(value: Any) -> tuple[Any, ...]:
    """Sort ids as numbers when they are numbers (2 before 12), anything else as text."""
    if isinstance(value, tuple):
        return tuple(_order(v) for v in value)
    return (0, value, "") if isinstance(value, (int, float)) else (1, 0, str(value))


def _fmt(paths: set[tuple[Any, ...]]) -> str:
    shown = sorted((p for p in paths if p), key=_order)
    text = ", ".join("/".join(str(v) for v in p) for p in shown[:6])
    return text + (f" (+{len(shown) - 6} more)" if len(shown) > 6 else "")


@check
async def matches_database(
    probe: Probe,
    exchange: Exchange,
    sql: str,
    *args: Any,
    nested: Sequence[str] = ("books",),
    key: str = "id",
    parent: str = "item",
) -> Verdict:
    """The response's nested keys equal the rows `sql` returns (see the module docstring).

    `sql` (with `$1`-style `args`) comes from the check's author, never from the
    learner. `parent` names a top-level object in the message ("author 12").
    """
    path_name = "/".join(nested)
    expected = f"{exchange.call} returns exactly the {path_name} the database holds for each {parent}"
    rows = await probe.fetch(sql, *args)  # committed data, outside the app's session
    truth = _tree_from_rows(rows)
    if exchange.status >= 400:
        return verdict(
            False,
            expected,
            f"the request failed ({outcome(exchange)})",
            exchange.sql,
            hint="fix the error first; the response has no data to compare.",
        )
    try:
        got = _tree_from_response(exchange.response.json(), nested, key)
    except (_Shape, ValueError) as exc:
        return verdict(
            False,
            expected,
            f"a response of an unexpected shape: {exc} ({outcome(exchange)})",
            exchange.sql,
            hint=(
                f"return a list of objects with {key!r}, each with a list {nested[0]!r}"
                + (f" whose items have {key!r} and {'/'.join(nested[1:])!r}" if len(nested) > 1 else "")
                + "."
            ),
        )
    if got == truth:
        return verdict(True, expected, f"{plural(len(got), parent)}, all matching ({outcome(exchange)})", exchange.sql)

    problems: list[str] = []
    extra_children = missing_children = 0
    missing_parents = sorted(set(truth) - set(got), key=_order)
    extra_parents = sorted(set(got) - set(truth), key=_order)
    if missing_parents:
        problems.append(
            f"{plural(len(missing_parents), parent)} missing from the response "
            f"(e.g. {', '.join(map(str, missing_parents[:MAX_EXAMPLES]))})"
        )
    if extra_parents:
        problems.append(
            f"{plural(len(extra_parents), parent)} in the response that the database query "
            f"does not return (e.g. {', '.join(map(str, extra_parents[:MAX_EXAMPLES]))})"
        )
    examples: list[str] = []
    for p in sorted(set(got) & set(truth), key=_order):
        extra, missing = got[p] - truth[p], truth[p] - got[p]
        if not extra and not missing:
            continue
        extra_children += bool(extra)
        missing_children += bool(missing)
        if len(examples) < MAX_EXAMPLES:
            parts = [f"{parent} {p}:"]
            if extra and _fmt(extra):
                parts.append(f"extra {path_name} {_fmt(extra)}")
            if missing and _fmt(missing):
                parts.append(f"missing {path_name} {_fmt(missing)}")
            if len(parts) == 1:
                parts.append("an empty list where the database has none, or the other way round")
            examples.append(" ".join(parts))
    if extra_children or missing_children:
        wrong = len({p for p in set(got) & set(truth) if got[p] != truth[p]})
        problems.append(f"{plural(wrong, parent)} with the wrong {path_name}: " + "; ".join(examples))

    return verdict(
        False,
        expected,
        "; ".join(problems) + f" ({outcome(exchange)})",
        exchange.sql,
        hint=first_hint(
            Hint(
                extra_children and not missing_children,
                "the response has children the database query excludes: a filter in a join does not "
                "filter a collection loaded separately (selectinload, lazy) — load it from the filtered "
                "join with `contains_eager`; and if the session already held these objects, add "
                "`.execution_options(populate_existing=True)` so the collection is replaced.",
            ),
            Hint(
                missing_children or missing_parents,
                "rows are missing: a LIMIT/OFFSET on a joined query counts joined rows, not parents — "
                "limit the parents (selectinload) or in a subquery; also check the filter.",
            ),
            default="the parents differ from the database query: an inner join keeps only parents with a "
            "matching child, an outer join keeps them all.",
        ),
    )
