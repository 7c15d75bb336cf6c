"""Record every SQL statement an engine sends to the database.

Listening on `before_cursor_execute` sees exactly what reaches the DBAPI cursor,
including the lazy loads and flushes an ORM issues behind the student's back.
Transaction control (BEGIN/COMMIT) does not go through a cursor, so it is not
here; `transactions.TransactionTrace` records it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from autograder.observe._engines import connection_id, sync_engine_of
from autograder.observe._listener import Listener

KINDS = ("SELECT", "INSERT", "UPDATE", "DELETE")


@dataclass(frozen=True)
class Statement:
    sql: str
    params: Any
    kind: str  # SELECT / INSERT / UPDATE / DELETE / OTHER
    connection_id: int
    executemany: bool


def kind_of(sql: str) -> str:
    """The statement's verb; a CTE (`WITH ...`) counts by the verb it ends in."""
    words = sql.lstrip().split(None, 1)
    first = words[0].upper() if words else ""
    if first in KINDS:
        return first
    if first == "WITH":
        upper = sql.upper()
        # the main statement follows the last CTE; the earliest verb after it wins
        positions = {k: upper.rfind(k) for k in KINDS}
        found = {k: p for k, p in positions.items() if p > 0}
        if found:
            return max(found, key=lambda k: found[k])
    return "OTHER"


def shorten(sql: str, limit: int = 240) -> str:
    """One line, at most `limit` characters: enough to recognise a statement."""
    flat = " ".join(sql.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


class SQLRecorder(Listener):
    """`with SQLRecorder(engine) as rec:` records statements until the block ends."""

    def __init__(self, engine: Any):
        self.engine = sync_engine_of(engine)
        self.statements: list[Statement] = []

    def _on_cursor(
        self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        self.statements.append(Statement(statement, parameters, kind_of(statement), connection_id(conn), executemany))

    def handlers(self) -> list[tuple[Any, str, Callable[..., Any]]]:
        return [(self.engine, "before_cursor_execute", self._on_cursor)]

    def clear(self) -> None:
        self.statements.clear()

    def counts(self) -> Counter[str]:
        return Counter(s.kind for s in self.statements)

    def repeated(self) -> list[tuple[str, int]]:
        """Statements whose SQL text ran more than once, most repeated first.

        The same text with different parameters is the signature of N+1: one
        query per row of an earlier result.
        """
        return repeated([s.sql for s in self.statements])

    def report(self) -> str:
        return numbered([s.sql for s in self.statements])


def repeated(sqls: list[str]) -> list[tuple[str, int]]:
    counted = Counter(sqls)
    return [(sql, n) for sql, n in counted.most_common() if n > 1]


def numbered(sqls: list[str], limit: int = 240, max_lines: int | None = None) -> str:
    if not sqls:
        return "(no SQL statements)"
    shown = sqls if max_lines is None else sqls[:max_lines]
    lines = [f"{i:>3}. {shorten(sql, limit)}" for i, sql in enumerate(shown, 1)]
    if len(shown) < len(sqls):
        lines.append(f"     ... and {len(sqls) - len(shown)} more")
    return "\n".join(lines)
