"""The lifecycle every observer shares (autograder/observe/_listener.py) and the engine it
listens on (autograder/observe/_engines.py). In-memory SQLite: no server needed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.ext.asyncio import create_async_engine

from autograder.observe._engines import connection_id, sync_engine_of
from autograder.observe._listener import Listener


class Counting(Listener):
    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.seen: list[str] = []

    def _on_cursor(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.seen.append(statement)

    def handlers(self) -> list[tuple[Any, str, Callable[..., Any]]]:
        return [(self.engine, "before_cursor_execute", self._on_cursor)]


def _run(engine: Any, sql: str) -> None:
    with engine.connect() as conn:
        conn.execute(text(sql))


def test_handlers_are_attached_for_the_block_and_removed_after():
    engine = create_engine("sqlite://")
    with Counting(engine) as watch:
        assert event.contains(engine, "before_cursor_execute", watch._on_cursor)
        _run(engine, "SELECT 1")
    _run(engine, "SELECT 2")
    assert watch.seen == ["SELECT 1"]
    assert not event.contains(engine, "before_cursor_execute", watch._on_cursor)


def test_close_is_idempotent_and_safe_before_enter():
    engine = create_engine("sqlite://")
    watch = Counting(engine)
    watch.close()  # never entered: nothing to remove, no error
    with watch:
        pass
    watch.close()
    watch.close()
    assert not event.contains(engine, "before_cursor_execute", watch._on_cursor)


def test_an_error_in_the_block_still_detaches():
    engine = create_engine("sqlite://")
    watch = Counting(engine)
    with pytest.raises(RuntimeError), watch:
        raise RuntimeError("the check failed")
    assert not event.contains(engine, "before_cursor_execute", watch._on_cursor)


def test_a_listener_must_say_what_it_attaches():
    with pytest.raises(NotImplementedError):
        Listener().__enter__()


def test_sync_engine_of_accepts_either_kind_and_nothing_else():
    engine = create_engine("sqlite://")
    assert sync_engine_of(engine) is engine
    async_engine = create_async_engine("postgresql+asyncpg://u@localhost/x")  # made, never connected
    assert sync_engine_of(async_engine) is async_engine.sync_engine
    with pytest.raises(TypeError, match="expected a SQLAlchemy Engine or AsyncEngine, got str"):
        sync_engine_of("postgresql://")


def test_connection_id_names_the_pooled_connection_not_the_wrapper():
    engine = create_engine("sqlite://")  # one connection, reused (SingletonThreadPool)
    with engine.connect() as first:
        a = connection_id(first)
    with engine.connect() as second:
        b = connection_id(second)
    assert a == b
    plain = object()  # no pooled connection behind it: its own id
    assert connection_id(plain) == id(plain)
