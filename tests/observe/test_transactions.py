import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError

from autograder.observe.transactions import TransactionTrace
from tests.apps.library import Author, User


async def test_commit(engine, SessionLocal):
    with TransactionTrace(engine) as tr:
        async with SessionLocal() as s:
            s.add(User(email="a@x"))
            await s.commit()
    assert tr.kinds() == ["BEGIN", "COMMIT"]


async def test_closing_a_session_without_rollback_still_rolls_back(engine, SessionLocal):
    # The premise of the rolled_back check: no explicit rollback() is needed.
    with TransactionTrace(engine) as tr:
        async with SessionLocal() as s:
            s.add(User(email="a@x"))
            await s.flush()
    assert tr.kinds() == ["BEGIN", "ROLLBACK"]
    async with SessionLocal() as s:
        assert (await s.scalars(select(User))).all() == []


async def test_savepoints_are_named_and_per_connection(engine, SessionLocal):
    with TransactionTrace(engine) as tr:
        async with SessionLocal() as s:
            async with s.begin_nested():
                s.add(Author(name="ok"))
            with pytest.raises(IntegrityError):
                async with s.begin_nested():
                    s.add(Author(name=""))
            await s.commit()
    assert tr.kinds() == ["BEGIN", "SAVEPOINT", "RELEASE", "SAVEPOINT", "ROLLBACK TO", "COMMIT"]
    released, rolled_back_to = (e.name for e in tr.events if e.kind in ("RELEASE", "ROLLBACK TO"))
    assert released.startswith("sa_savepoint_") and rolled_back_to != released
    assert list(tr.by_connection().values()) == [tr.kinds()]


async def test_two_connections_are_told_apart(engine):
    with TransactionTrace(engine) as tr:
        async with engine.connect() as c1, engine.connect() as c2:
            await c1.begin()
            await c2.begin()
            await c1.commit()
            await c2.rollback()
    assert sorted(tr.by_connection().values()) == [["BEGIN", "COMMIT"], ["BEGIN", "ROLLBACK"]]
    assert not event.contains(engine.sync_engine, "commit", tr._commit)
