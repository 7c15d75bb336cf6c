from sqlalchemy import event, select, text

from autograder.observe.sql import SQLRecorder, kind_of
from tests.apps.library import Author, User


async def test_records_statements_with_kind_and_params(engine, SessionLocal):
    with SQLRecorder(engine) as rec:
        async with SessionLocal() as s:
            s.add(User(email="a@x"))
            await s.flush()
            await s.scalars(select(Author).where(Author.name == "a0"))
            await s.commit()
    kinds = [st.kind for st in rec.statements]
    assert kinds == ["INSERT", "SELECT"]
    assert "a0" in str(rec.statements[1].params)
    assert rec.counts()["INSERT"] == 1 and rec.counts()["SELECT"] == 1
    assert rec.statements[0].connection_id == rec.statements[1].connection_id
    assert not rec.statements[0].executemany


async def test_repeated_and_report(engine, SessionLocal):
    with SQLRecorder(engine) as rec:
        async with SessionLocal() as s:
            for name in ["a0", "a1", "a0"]:
                await s.scalars(select(Author).where(Author.name == name))
            await s.execute(text("SELECT 1"))
    ((sql, n),) = rec.repeated()
    assert n == 3 and "FROM authors" in sql
    report = rec.report()
    assert report.splitlines()[0].startswith("  1. SELECT")
    assert "  4. SELECT 1" in report
    rec.clear()
    assert rec.statements == [] and rec.report() == "(no SQL statements)"


async def test_accepts_a_sync_engine_and_removes_its_listener(engine):
    rec = SQLRecorder(engine.sync_engine)
    with rec:
        assert event.contains(engine.sync_engine, "before_cursor_execute", rec._on_cursor)
    assert not event.contains(engine.sync_engine, "before_cursor_execute", rec._on_cursor)
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    assert rec.statements == []


def test_kind_of():
    assert kind_of("  select 1") == "SELECT"
    assert kind_of("WITH x AS (SELECT 1) UPDATE t SET a = 1") == "UPDATE"
    assert kind_of("CREATE TABLE t (x int)") == "OTHER"
