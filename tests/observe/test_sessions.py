from sqlalchemy import event, select
from sqlalchemy.orm import Session

from autograder.observe.sessions import SessionWatch
from tests.apps.library import Author


async def test_tells_sessions_apart(SessionLocal):
    with SessionWatch() as watch:
        shared = SessionLocal()
        for _ in range(2):
            await shared.scalars(select(Author))
            await shared.commit()
        async with SessionLocal() as other:
            await other.scalars(select(Author))
        await shared.close()
    assert len(watch.uses) == 3
    assert watch.serials() == [1, 2]
    assert watch.uses[0].session_id == id(shared.sync_session)
    assert not event.contains(Session, "after_begin", watch._on_begin)


async def test_a_new_session_at_a_recycled_address_gets_a_new_serial(SessionLocal):
    with SessionWatch() as watch:
        for _ in range(5):
            async with SessionLocal() as s:
                await s.scalars(select(Author))
            del s
    assert watch.serials() == [1, 2, 3, 4, 5]
