import asyncio

import asyncpg

from autograder import lesson
from autograder.db import admin
from autograder.db import url as urls


def test_setup_resets_the_lesson_database(monkeypatch):
    monkeypatch.setenv(lesson.ENV_DB_NAME, "lesson_reset_probe")
    db = lesson.setup("reset_probe")

    async def write_then_count():
        conn = await asyncpg.connect(**admin.asyncpg_params(urls.normalize(db.url)))
        try:
            await conn.execute("CREATE TABLE t (x int); INSERT INTO t VALUES (1)")
        finally:
            await conn.close()

    asyncio.run(write_then_count())
    db2 = lesson.setup("reset_probe")

    async def tables():
        conn = await asyncpg.connect(**admin.asyncpg_params(urls.normalize(db2.url)))
        try:
            return await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        finally:
            await conn.close()

    assert asyncio.run(tables()) == 0
    admin.drop_database(urls.normalize(db.admin_url), "lesson_reset_probe")


def test_each_lesson_gets_its_own_database(monkeypatch):
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    assert lesson.database_name("00_foundations") != lesson.database_name("01_session_dependency")
    assert lesson.database_name("01 Session-Dependency") == "lesson_01_session_dependency"
    # parallel test workers run the same lesson at once: each gets its own database
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    assert lesson.database_name("01_session_dependency") == "lesson_01_session_dependency_gw1"


def test_repr_never_shows_a_password(monkeypatch):
    db = lesson.LessonDatabase(
        "x", "lesson_x", "postgresql+asyncpg://u:s3cret@h/lesson_x", "postgresql+asyncpg://u:s3cret@h/postgres"
    )
    assert "s3cret" not in repr(db)
