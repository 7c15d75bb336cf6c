from sqlalchemy import event, select
from sqlalchemy.orm import Session

from autograder.observe import Observation
from tests.apps.library import Author


async def test_all_observers_at_once_and_all_removed_after(engine, SessionLocal):
    with Observation(engine) as obs:
        async with SessionLocal() as s:
            for a in (await s.scalars(select(Author))).all():
                await a.awaitable_attrs.books
    assert obs.sql.counts()["SELECT"] == 3
    assert obs.tx.kinds() == ["BEGIN", "ROLLBACK"]
    assert obs.pool.checked_out() == 0
    assert len(obs.sessions.serials()) == 1
    assert obs.loads.attributes() == ["Author.books"] * 2
    assert not event.contains(engine.sync_engine, "before_cursor_execute", obs.sql._on_cursor)
    assert not event.contains(engine.sync_engine.pool, "checkout", obs.pool._on_checkout)
    assert not event.contains(Session, "do_orm_execute", obs.loads._on_execute)
    assert not event.contains(Session, "after_begin", obs.sessions._on_begin)
