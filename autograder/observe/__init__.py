"""Observers: record what an app did to the database, never how its code looks.

`Observation(engine)` turns all of them on for one `with` block:

    with Observation(engine) as obs:
        ...
    obs.sql.statements, obs.tx.kinds(), obs.pool.checked_out(), obs.sessions.uses, obs.loads.loads
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

from autograder.observe.loads import LazyLoad, LazyLoadWatch, lazy_load_named_by
from autograder.observe.pool import PoolWatch
from autograder.observe.sessions import SessionUse, SessionWatch
from autograder.observe.sql import SQLRecorder, Statement
from autograder.observe.transactions import TransactionTrace, TxEvent

__all__ = [
    "Observation",
    "SQLRecorder",
    "Statement",
    "TransactionTrace",
    "TxEvent",
    "PoolWatch",
    "SessionWatch",
    "SessionUse",
    "LazyLoadWatch",
    "LazyLoad",
    "lazy_load_named_by",
]


class Observation:
    def __init__(self, engine: Any):
        self.sql = SQLRecorder(engine)
        self.tx = TransactionTrace(engine)
        self.pool = PoolWatch(engine)
        self.sessions = SessionWatch()
        self.loads = LazyLoadWatch()
        self._stack = ExitStack()

    def __enter__(self) -> Observation:
        with ExitStack() as stack:  # if one observer fails to start, undo the others
            for watcher in (self.sql, self.tx, self.pool, self.sessions, self.loads):
                stack.enter_context(watcher)
            self._stack = stack.pop_all()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def clear(self) -> None:
        self.sql.clear()
        self.tx.clear()
        self.sessions.clear()
        self.loads.clear()
