"""Find the synchronous core of an engine, whatever kind the caller handed us.

SQLAlchemy's asyncio layer is a thin shell: events are only dispatched by the
synchronous `Engine` inside an `AsyncEngine` (`.sync_engine`). Every observer
accepts either, so a check never has to care which one the app built.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine


def sync_engine_of(engine: Any) -> Engine:
    core = getattr(engine, "sync_engine", engine)
    if not isinstance(core, Engine):
        raise TypeError(f"expected a SQLAlchemy Engine or AsyncEngine, got {type(engine).__name__}")
    return core


def connection_id(conn: Any) -> int:
    """A stable id for the DBAPI connection behind a `Connection`.

    Two `Connection` objects may wrap the same pooled DBAPI connection one after
    the other; what a reader cares about is the physical connection, so we name
    that one (the id of the pool's connection record).
    """
    # `_dbapi_connection` rather than `.connection`: the public property may try
    # to revalidate (do IO) on an invalidated connection, and a listener must not.
    fairy = getattr(conn, "_dbapi_connection", None)
    record = getattr(fairy, "_connection_record", None)
    if record is not None:
        return id(record)
    return id(fairy) if fairy is not None else id(conn)
