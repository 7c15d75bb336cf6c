"""Record transaction control (BEGIN, COMMIT, ROLLBACK, savepoints) on an engine.

These never pass through a cursor, so the SQL recorder cannot see them; the
`ConnectionEvents` transaction hooks can. A session closed without an explicit
`rollback()` still rolls back through its `Connection`, which fires `rollback`,
so "closed without committing" shows up here as ROLLBACK.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from autograder.observe._engines import connection_id, sync_engine_of
from autograder.observe._listener import Listener


@dataclass(frozen=True)
class TxEvent:
    kind: str  # BEGIN / COMMIT / ROLLBACK / SAVEPOINT / RELEASE / ROLLBACK TO
    connection_id: int
    # The savepoint's name. SAVEPOINT events usually carry None: SQLAlchemy fires
    # the event before it generates the name; RELEASE / ROLLBACK TO carry it.
    name: str | None = None


class TransactionTrace(Listener):
    def __init__(self, engine: Any):
        self.engine = sync_engine_of(engine)
        self.events: list[TxEvent] = []
        # (event name, handler): signatures per sqlalchemy/engine/events.py
        self._hooks: list[tuple[str, Callable[..., None]]] = [
            ("begin", self._begin),
            ("commit", self._commit),
            ("rollback", self._rollback),
            ("savepoint", self._savepoint),
            ("rollback_savepoint", self._rollback_savepoint),
            ("release_savepoint", self._release_savepoint),
        ]

    def _add(self, kind: str, conn: Any, name: str | None = None) -> None:
        self.events.append(TxEvent(kind, connection_id(conn), name))

    def _begin(self, conn: Any) -> None:
        self._add("BEGIN", conn)

    def _commit(self, conn: Any) -> None:
        self._add("COMMIT", conn)

    def _rollback(self, conn: Any) -> None:
        self._add("ROLLBACK", conn)

    def _savepoint(self, conn: Any, name: str | None) -> None:
        self._add("SAVEPOINT", conn, name)

    def _rollback_savepoint(self, conn: Any, name: str | None, context: Any) -> None:
        self._add("ROLLBACK TO", conn, name)

    def _release_savepoint(self, conn: Any, name: str | None, context: Any) -> None:
        self._add("RELEASE", conn, name)

    def handlers(self) -> list[tuple[Any, str, Callable[..., Any]]]:
        return [(self.engine, name, fn) for name, fn in self._hooks]

    def clear(self) -> None:
        self.events.clear()

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]

    def by_connection(self) -> dict[int, list[str]]:
        grouped: dict[int, list[str]] = defaultdict(list)
        for e in self.events:
            grouped[e.connection_id].append(e.kind)
        return dict(grouped)
